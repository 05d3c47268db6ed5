// Bounds on the JSON the platform stores, checked without serializing or parsing it. JSON.parse
// has no depth limit (V8 parses a million nested brackets), but what comes after it does:
// JSON.stringify and canonicalize recurse and overflow the JS stack near 10,000 levels, and
// Postgres' json/jsonb parsers hit max_stack_depth between 10,000 and 50,000. The API refuses
// such values at the door (apps/api/src/lib/json-limits.ts makes the problems); the task schema
// checks each array input here. Free of zod, like limits.ts.
import { MAX_JSON_DEPTH } from "./limits.ts";

export interface JsonViolation {
  kind: "depth" | "size";
  /** Where, as dotted keys and indexes from the value's root (`inputs.3.a`); "" is the root. */
  path: string;
  message: string;
}

/** Path segments shown of a violation's location: a path 64 levels deep is noise past this. */
const shownSegments = 8;

function describePath(root: string, segments: (string | number)[]): string {
  const shown = segments.slice(0, shownSegments).map(String);
  if (segments.length > shownSegments) shown.push(`…(${segments.length - shownSegments} more)`);
  return [root, ...shown].filter((s) => s !== "").join(".");
}

type Frame = { value: unknown[] | Record<string, unknown>; keys: string[] | null; next: number; segment: string | number };

/**
 * The first place where `value` nests deeper than `maxDepth` levels of arrays and objects or
 * where its JSON text passes `maxChars` characters, or null when it is within both. Iterative
 * (a deep value cannot overflow the stack here), and it stops at the first violation, so a
 * hostile value costs at most as much as the part of it that was read.
 *
 * The size is that of the compact JSON text, counted without serializing: string lengths plus
 * their quotes (escapes not counted), numbers as printed, punctuation.
 */
export function jsonViolation(value: unknown, limits: { maxDepth?: number; maxChars?: number; path?: string } = {}): JsonViolation | null {
  const maxDepth = limits.maxDepth ?? MAX_JSON_DEPTH;
  const maxChars = limits.maxChars ?? Infinity;
  const root = limits.path ?? "";
  const stack: Frame[] = [];
  const segments = () => stack.slice(1).map((frame) => frame.segment);
  let chars = 0;
  let current: unknown = value;
  let segment: string | number = "";
  for (;;) {
    // Visit `current` (reached by `segment` from the top frame).
    if (current !== null && typeof current === "object") {
      const isArray = Array.isArray(current);
      stack.push({ value: current as Frame["value"], keys: isArray ? null : Object.keys(current), next: 0, segment });
      chars += 2;
      if (stack.length > maxDepth) {
        return { kind: "depth", path: describePath(root, segments()), message: `nested deeper than ${maxDepth} levels of arrays and objects` };
      }
    } else {
      chars += scalarChars(current);
    }
    if (chars > maxChars) {
      const at = stack.length > 0 ? segments() : [];
      return { kind: "size", path: describePath(root, at), message: `longer than ${maxChars} characters of JSON` };
    }
    // Find the next child to visit, popping finished containers.
    for (;;) {
      const top = stack.at(-1);
      if (!top) return null;
      if (top.keys === null) {
        const items = top.value as unknown[];
        if (top.next < items.length) {
          if (top.next > 0) chars += 1; // ,
          segment = top.next;
          current = items[top.next++];
          break;
        }
      } else if (top.next < top.keys.length) {
        const key = top.keys[top.next++]!;
        chars += key.length + 3 + (top.next > 1 ? 1 : 0); // "key": and a comma
        segment = key;
        current = (top.value as Record<string, unknown>)[key];
        break;
      }
      stack.pop();
    }
  }
}

function scalarChars(value: unknown): number {
  switch (typeof value) {
    case "string":
      return value.length + 2;
    case "number":
      return Number.isFinite(value) ? String(value).length : 4;
    case "boolean":
      return value ? 4 : 5;
    default:
      return 4; // null (and, in a JS value, undefined: JSON.stringify writes null or drops it)
  }
}

/**
 * The first place where JSON `text` nests deeper than `maxDepth`, by a scan of its brackets
 * outside strings, without parsing it: for NDJSON lines, which are stored as text and parsed by
 * Postgres, where a 100,000-deep line overflowed the server's stack. Text that is not JSON at
 * all is left to the parser; this only answers whether the brackets go too deep. Returns the
 * character offset where the limit is passed, or -1.
 */
export function jsonTextTooDeep(text: string, maxDepth = MAX_JSON_DEPTH): number {
  if (text.length <= maxDepth) return -1; // fewer characters than levels: cannot be too deep
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i++; // a backslash escapes the next character, a quote included
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > maxDepth) return i;
    } else if (ch === 0x5d || ch === 0x7d) {
      depth--;
    }
  }
  return -1;
}
