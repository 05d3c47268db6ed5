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

export interface JsonTextProblem {
  kind: "syntax" | "depth";
  /** The character offset where the text stops being JSON, or passes the depth. */
  at: number;
}

/**
 * Whether `text` is exactly one JSON value (RFC 8259, whitespace around it allowed) nesting at
 * most `maxDepth` arrays and objects: null when it is, else where it is not. One pass over the
 * characters that builds nothing, for JSON text that is carried on as text (a chunk's result,
 * from the worker that computed it to the request that reports it) and must not be parsed
 * only to be checked.
 */
export function jsonTextProblem(text: string, maxDepth = MAX_JSON_DEPTH): JsonTextProblem | null {
  const n = text.length;
  // The commonest result, a bare number, without setting up the scan.
  numberAt.lastIndex = 0;
  if (numberAt.test(text) && numberAt.lastIndex === n) return null;
  /** The open containers' closing brackets, innermost last. */
  const closers: number[] = [];
  let i = 0;
  const skipSpace = (): void => {
    for (; i < n; i++) {
      const ch = text.charCodeAt(i);
      if (ch !== 0x20 && ch !== 0x0a && ch !== 0x0d && ch !== 0x09) return;
    }
  };
  // At a quote: past the string's closing quote, or false.
  const string = (): boolean => {
    for (i++; i < n; i++) {
      // Runs of plain characters in one step (a regex scans a long string several times faster).
      plainRun.lastIndex = i;
      plainRun.test(text);
      i = plainRun.lastIndex;
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        i++;
        return true;
      }
      if (ch < 0x20) return false;
      if (ch === 0x5c) {
        const escaped = text.charCodeAt(++i);
        if (escaped === 0x75) {
          for (let k = 0; k < 4; k++) if (!isHex(text.charCodeAt(++i))) return false;
        } else if (!isEscape(escaped)) return false;
      }
    }
    return false;
  };
  // At a `-` or a digit: past the number, or false.
  const number = (): boolean => {
    numberAt.lastIndex = i;
    if (!numberAt.test(text)) return false;
    i = numberAt.lastIndex;
    return true;
  };
  // An object's member name and its colon; then its value.
  const key = (): boolean => {
    skipSpace();
    if (text.charCodeAt(i) !== 0x22 || !string()) return false;
    skipSpace();
    if (text.charCodeAt(i) !== 0x3a) return false;
    i++;
    return true;
  };
  const syntax = (): JsonTextProblem => ({ kind: "syntax", at: Math.min(i, n) });
  for (;;) {
    // A value.
    skipSpace();
    const ch = text.charCodeAt(i);
    if (ch === 0x5b || ch === 0x7b) {
      if (closers.length >= maxDepth) return { kind: "depth", at: i };
      const closer = ch + 2; // ] or }
      i++;
      skipSpace();
      if (text.charCodeAt(i) === closer) i++;
      else {
        closers.push(closer);
        if (ch === 0x7b && !key()) return syntax();
        continue;
      }
    } else if (ch === 0x22) {
      if (!string()) return syntax();
    } else if (ch === 0x2d || isDigit(ch)) {
      if (!number()) return syntax();
    } else if (text.startsWith("true", i) || text.startsWith("null", i)) i += 4;
    else if (text.startsWith("false", i)) i += 5;
    else return syntax();
    // After a value: a comma, the end of containers, or the end of the text.
    for (;;) {
      skipSpace();
      const closer = closers.at(-1);
      if (closer === undefined) return i === n ? null : syntax();
      const next = text.charCodeAt(i);
      if (next === closer) {
        i++;
        closers.pop();
        continue;
      }
      if (next !== 0x2c) return syntax();
      i++;
      if (closer === 0x7d && !key()) return syntax();
      break;
    }
  }
}

/** One JSON number, where it starts (RFC 8259: no leading zeros, no bare `.` or exponent). */
const numberAt = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
/** Characters a JSON string holds as they are: neither a quote, a backslash nor a control character. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: a JSON string holds no control character unescaped; this stops at one
const plainRun = /[^"\\\u0000-\u001f]*/y;
const isDigit = (ch: number): boolean => ch >= 0x30 && ch <= 0x39;
const isHex = (ch: number): boolean => isDigit(ch) || (ch >= 0x61 && ch <= 0x66) || (ch >= 0x41 && ch <= 0x46);
// " \ / b f n r t
const isEscape = (ch: number): boolean => ch === 0x22 || ch === 0x5c || ch === 0x2f || ch === 0x62 || ch === 0x66 || ch === 0x6e || ch === 0x72 || ch === 0x74;
