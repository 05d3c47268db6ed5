// The wire contract between host (app page), frame (sandbox origin) and workers.
// Shared by all three bundles, so it holds messages, the sandbox's own timings and pure
// helpers only: the rules a chunk's outcome answers to (error kinds, sizes, depth) are the
// HTTP contract's, read from its zod-free subpaths.
import { MAX_CONSOLE_CHARS, MAX_CONSOLE_LINES, MAX_ERROR_MESSAGE_BYTES } from "@crowdcompute/contract/limits";
import { type ConsoleLevel, consoleLevels, type ChunkErrorKind as ReportedErrorKind } from "@crowdcompute/contract/statuses";
import type { WasmMemoryLimits } from "./wasm-limits.ts";

export type { ConsoleLevel };

/**
 * How a chunk can fail: the kinds a volunteer reports, and `cancelled`, the sandbox's own:
 * the host asked for it (`Sandbox.cancel`), so there is nothing to report to the server.
 */
export type ChunkErrorKind = ReportedErrorKind | "cancelled";

export interface ChunkError {
  kind: ChunkErrorKind;
  /** At most {@link MAX_ERROR_MESSAGE_BYTES} bytes of UTF-8. */
  message: string;
}

export interface ConsoleLine {
  level: ConsoleLevel;
  text: string;
}

/**
 * What one chunk wrote to its console: at most {@link MAX_CONSOLE_LINES} lines and
 * {@link MAX_CONSOLE_CHARS} characters of text; `truncated` when it wrote more.
 */
export interface ChunkConsole {
  lines: ConsoleLine[];
  truncated?: boolean;
}

/**
 * One chunk's result: the work function's return value as JSON text (the frame checked it is one JSON
 * value of at most 1 MiB nesting at most 64 levels, without parsing it), or why there is none.
 * `console` is there only when the chunk wrote to its console.
 */
export type ChunkOutcome = { key: string; ok: true; resultJson: string; cpuMs: number; console?: ChunkConsole } | { key: string; ok: false; error: ChunkError; cpuMs: number; console?: ChunkConsole };

/** The work code to run. `codeSha256` is lowercase hex of the UTF-8 bytes of `code`. */
export interface SandboxTask {
  taskId: string;
  code: string;
  codeSha256: string;
  /**
   * The task's WebAssembly module, when it has one: the bytes the page fetched (never work
   * code), checked by the host against `wasmSha256` (lowercase hex). Work code gets it as
   * `ctx.wasm`, a `WebAssembly.Instance`.
   */
  wasm?: Uint8Array | undefined;
  wasmSha256?: string | null | undefined;
  /** The task requires WebGPU: work code gets `ctx.gpu`, a `GPUDevice`, when the worker has an adapter. */
  webgpu?: boolean | undefined;
  /** Per chunk, counted from the chunk's own start in its worker. */
  timeoutMs: number;
  /**
   * Each worker's memory budget in MiB (default the contract's `TASK_MEMORY_MB.default`), capped by the
   * volunteer's `maxMemoryMb`: a chunk that goes over it fails as `oom`.
   */
  memoryMb?: number | undefined;
}

/** What the frame hands a worker to load: the code, and the task's module compiled once by the frame. */
export interface WorkerLoad {
  code: string;
  wasm: WebAssembly.Module | null;
  /** The memories the task's module defines, as the frame capped them to the budget. */
  wasmLimits: WasmMemoryLimits | null;
  webgpu: boolean;
  /** The worker's memory budget in bytes. */
  memoryBytes: number;
}

/** One input to run. `key` identifies the chunk in outcomes and progress (e.g. a lease id). */
export interface SandboxChunk {
  key: string;
  index: number;
  input: unknown;
  /**
   * Which export runs: the default `work(input, ctx)`, or `reduce(results)` for the
   * task's reduce chunks (docs/architecture.md, "Replication, trust and reduce"), whose input is an array of results.
   */
  entry?: "work" | "reduce" | undefined;
  /**
   * The latest `ctx.checkpoint(state)` of an earlier attempt at this chunk (another volunteer's
   * that vanished, or timed out): work code gets it as `ctx.resume`.
   */
  resume?: unknown;
}

/** A `ctx.checkpoint(state)`: the state as JSON text, at most the contract's `MAX_CHECKPOINT_CHARS` characters. */
export interface ChunkCheckpoint {
  key: string;
  json: string;
}

export interface ChunkProgress {
  key: string;
  /** 0..1 */
  fraction: number;
  message?: string;
}

export const MAX_THREADS = 64;
/** Progress reaches the host at most this often per chunk (4/s). */
export const PROGRESS_INTERVAL_MS = 250;
/** A chunk that logs sends its lines on to the frame at most this often while it runs, so a chunk that is stopped at its deadline keeps them. */
export const CONSOLE_FLUSH_MS = 250;
/** `ctx.checkpoint(state)`: at most one kept per interval (calls in between return false). */
export const CHECKPOINT_INTERVAL_MS = 500;

/** Window messages of the handshake; nothing else ever crosses a window boundary. */
export const READY_MESSAGE = "cc-sandbox-ready";
export const CONNECT_MESSAGE = "cc-sandbox-connect";

/** What the frame exposes to the host over the handshake's MessagePort. */
export interface FrameApi {
  /**
   * Threads (1..64), the share of each thread's time chunks may use (1..100), and the most
   * memory a worker may hold (MiB, caps every task's budget); all apply at once.
   */
  configure(options: { threads: number; cpuPercent?: number; maxMemoryMb?: number }): void;
  /**
   * Runs the chunks; a batch of the task already running joins it (its workers go on to it
   * without a gap), any other waits for the running task's chunks to end.
   */
  runBatch(task: SandboxTask, chunks: SandboxChunk[], onProgress?: (progress: ChunkProgress) => void, onCheckpoint?: (checkpoint: ChunkCheckpoint) => void): Promise<ChunkOutcome[]>;
  /** Cancels chunks by key, waiting or running: they end as `cancelled` (see `Sandbox.cancel`). */
  cancel(keys: string[]): void;
  ping(): "pong";
  /**
   * Keys of the chunks the workers are running now. The host asks while batches run, so that
   * when the frame dies it knows which chunks could have killed it (host.ts retries the rest).
   */
  running(): string[];
}

/**
 * Frame → worker messages. `run`s execute one at a time, in order; `cancel` aborts `ctx.signal`
 * of the chunk with that key, running or queued in the worker.
 */
export type ToWorker = { t: "load"; load: WorkerLoad } | { t: "run"; chunk: SandboxChunk; timeoutMs: number; restFactor?: number } | { t: "cancel"; key: string };

/**
 * Worker → frame messages, posted only by the worker's bootstrap (work code has no postMessage).
 * An outcome is posted from a task of its own after the chunk returned, so its arrival shows
 * the worker got back to its event loop; `replace` says the worker must not run another chunk
 * (it went over its memory budget, or left work running). `progress`, `console` and
 * `checkpoint` come only from chunks that call them, each at most at its own rate.
 */
export type FromWorker =
  | { t: "loaded"; ok: true }
  | { t: "loaded"; ok: false; message: string }
  | { t: "outcome"; outcome: ChunkOutcome; replace?: boolean }
  | { t: "progress"; key: string; fraction: number; message?: string }
  | { t: "console"; key: string; lines: ConsoleLine[]; truncated?: boolean }
  | { t: "checkpoint"; key: string; json: string };

const encoder = new TextEncoder();

/** True when `text` is longer than `maxBytes` in UTF-8; encodes only when its length cannot tell. */
export function exceedsUtf8Bytes(text: string, maxBytes: number): boolean {
  // A UTF-16 code unit takes 1 to 3 bytes of UTF-8.
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return encoder.encode(text).length > maxBytes;
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes = MAX_ERROR_MESSAGE_BYTES): string {
  if (!exceedsUtf8Bytes(text, maxBytes)) return text;
  // maxBytes code units encode to at least maxBytes bytes, so a huge text is never encoded whole.
  const bytes = encoder.encode(text.slice(0, maxBytes)).subarray(0, maxBytes);
  // A cut inside a multi-byte character decodes to a trailing U+FFFD; drop it.
  return new TextDecoder().decode(bytes).replace(/\uFFFD$/, "");
}

/** A failed outcome with its message already bounded. */
export function failure(key: string, kind: ChunkErrorKind, message: string, cpuMs: number): ChunkOutcome {
  return { key, ok: false, error: { kind, message: truncateUtf8(message) }, cpuMs };
}

/** `String(err.message ?? err)`, for values that may throw when converted. */
export function describeError(err: unknown): string {
  try {
    return String((err as { message?: unknown } | null | undefined)?.message ?? err);
  } catch {
    return "a value that cannot be converted to a string was thrown";
  }
}

/**
 * Adds lines a worker sent to a chunk's console, checked and cut to the bounds (a worker is
 * untrusted: anything that is not a line of text is dropped). Returns what the chunk has now.
 */
export function appendConsole(into: ChunkConsole | undefined, lines: unknown, truncated: unknown): ChunkConsole | undefined {
  const list = Array.isArray(lines) ? lines : [];
  if (list.length === 0 && truncated !== true) return into;
  const kept: ChunkConsole = into ?? { lines: [] };
  let chars = 0;
  for (const line of kept.lines) chars += line.text.length;
  for (const raw of list) {
    const text = (raw as { text?: unknown } | null)?.text;
    if (typeof text !== "string") continue;
    if (kept.lines.length >= MAX_CONSOLE_LINES || chars >= MAX_CONSOLE_CHARS) {
      kept.truncated = true;
      break;
    }
    const level = consoleLevels.find((known) => known === (raw as { level?: unknown }).level) ?? "log";
    const room = MAX_CONSOLE_CHARS - chars;
    const cut = text.length > room ? text.slice(0, room) : text;
    if (cut !== text) kept.truncated = true;
    kept.lines.push({ level, text: cut });
    chars += cut.length;
  }
  if (truncated === true) kept.truncated = true;
  return kept.lines.length > 0 || kept.truncated ? kept : undefined;
}
