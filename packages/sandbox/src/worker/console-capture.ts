// The console work code gets (docs/architecture.md, "Progress, console and checkpoints"):
// each call becomes a line of the running chunk's console, kept up to MAX_CONSOLE_LINES lines
// and MAX_CONSOLE_CHARS characters and sent with the chunk's outcome, so the creator sees it.
// Nothing reaches the browser's own console (the volunteer's page echoes lines only when its
// volunteer asks). A chunk that writes nothing costs a few assignments: no array, no message.
import { MAX_CONSOLE_CHARS, MAX_CONSOLE_LINES } from "@crowdcompute/contract/limits";
import { type ChunkConsole, CONSOLE_FLUSH_MS, type ConsoleLevel, type ConsoleLine, describeError } from "../protocol.ts";
import { apply } from "./intrinsics.ts";

// Taken before work code loads: it shares the realm and may replace any of these.
const stringify = JSON.stringify;
const toText = String;
const ErrorType = Error;
const isArray = Array.isArray;
const stringReplace = String.prototype.replace;
const stringSlice = String.prototype.slice;
const truncate = Math.trunc;
const toNumber = Number;
const call = <T>(method: (...args: never[]) => T, self: unknown, ...args: unknown[]): T => apply(method as (...a: unknown[]) => T, self, args);

export interface ConsoleCapture {
  /** What work code gets as `console`. */
  console: Console;
  /** A chunk starts: lines go to it from now on. */
  begin(key: string): void;
  /** The chunk ended: its lines not yet sent to the frame, or undefined when there are none. */
  end(): ChunkConsole | undefined;
}

/**
 * `send` posts lines to the frame while a long chunk runs (at most every CONSOLE_FLUSH_MS), so
 * a chunk stopped at its deadline keeps what it wrote; the rest leave with the outcome.
 */
export function captureConsole(now: () => number, send: (key: string, console: ChunkConsole) => void): ConsoleCapture {
  let key: string | undefined;
  let pending: ConsoleLine[] | null = null;
  let lines = 0;
  let chars = 0;
  let truncated = false;
  let flushedAt = 0;

  const write = (level: ConsoleLevel, args: unknown[]): void => {
    if (key === undefined) return; // while the module loads: no chunk to show it with
    if (lines >= MAX_CONSOLE_LINES || chars >= MAX_CONSOLE_CHARS) {
      truncated = true;
      return;
    }
    let text = format(args);
    const room = MAX_CONSOLE_CHARS - chars;
    if (text.length > room) {
      text = call(stringSlice, text, 0, room) as string;
      truncated = true;
    }
    if (pending === null) {
      pending = [];
      if (lines === 0) flushedAt = now();
    }
    pending[pending.length] = { level, text };
    lines += 1;
    chars += text.length;
    if (now() - flushedAt >= CONSOLE_FLUSH_MS) {
      flushedAt = now();
      const sent: ChunkConsole = truncated ? { lines: pending, truncated } : { lines: pending };
      pending = null;
      send(key, sent);
    }
  };

  const method =
    (level: ConsoleLevel) =>
    (...args: unknown[]) =>
      write(level, args);
  const ignore = () => {};
  const captured = {
    log: method("log"),
    info: method("info"),
    warn: method("warn"),
    error: method("error"),
    debug: method("debug"),
    trace: method("debug"),
    dir: method("log"),
    dirxml: method("log"),
    table: method("log"),
    assert: (condition?: unknown, ...args: unknown[]) => {
      if (!condition) write("error", ["Assertion failed", ...args]);
    },
    // Timers, counters, groups and profiles write nothing here; they exist so code that calls them runs.
    count: ignore,
    countReset: ignore,
    group: ignore,
    groupCollapsed: ignore,
    groupEnd: ignore,
    time: ignore,
    timeEnd: ignore,
    timeLog: ignore,
    timeStamp: ignore,
    profile: ignore,
    profileEnd: ignore,
    clear: ignore,
  };

  return {
    console: Object.freeze(captured) as unknown as Console,
    begin(chunkKey) {
      key = chunkKey;
      pending = null;
      lines = 0;
      chars = 0;
      truncated = false;
    },
    end() {
      const left = pending;
      const cut = truncated;
      key = undefined;
      pending = null;
      if (left === null && !cut) return undefined;
      return cut ? { lines: left ?? [], truncated: true } : { lines: left ?? [] };
    },
  };
}

/** The arguments as one line, roughly as a browser prints them: `%s %d %i %f %o %O %j %c` substituted in a leading string. */
function format(args: unknown[]): string {
  let rest = args;
  let text = "";
  if (typeof args[0] === "string" && args.length > 1) {
    let next = 1;
    text = call(stringReplace, args[0], /%[sdifoOjc%]/g, (spec: string) => {
      if (spec === "%%") return "%";
      if (next >= args.length) return spec;
      const value = args[next++];
      if (spec === "%c") return "";
      if (spec === "%d" || spec === "%i") return typeof value === "bigint" ? toText(value) : toText(truncate(toNumber(value)));
      if (spec === "%f") return toText(toNumber(value));
      return describe(value);
    }) as string;
    rest = [];
    for (let i = next; i < args.length; i++) rest[rest.length] = args[i];
  } else if (args.length > 0) {
    text = describe(args[0]);
    rest = [];
    for (let i = 1; i < args.length; i++) rest[rest.length] = args[i];
  }
  for (let i = 0; i < rest.length; i++) text += ` ${describe(rest[i])}`;
  return text;
}

function describe(value: unknown): string {
  try {
    switch (typeof value) {
      case "string":
        return value;
      case "function":
        return `[Function ${toText((value as { name?: unknown }).name || "(anonymous)")}]`;
      case "object": {
        if (value === null) return "null";
        if (value instanceof ErrorType) {
          const stack = (value as Error).stack;
          return typeof stack === "string" && stack !== "" ? stack : `${toText(value.name)}: ${toText(value.message)}`;
        }
        const json = stringify(value);
        if (typeof json === "string") return json;
        return isArray(value) ? "[]" : toText(value);
      }
      default:
        return toText(value);
    }
  } catch (err) {
    // A cycle, a getter that throws, a proxy: say what it is rather than fail the chunk.
    try {
      return toText(value);
    } catch {
      return `[a value that cannot be shown: ${describeError(err)}]`;
    }
  }
}
