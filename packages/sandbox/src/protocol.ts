// The wire contract between host (app page), frame (sandbox origin) and workers.
// Shared by all three bundles, so it holds types, constants and pure helpers only.

/**
 * How a chunk can fail (DESIGN §5). `cancelled` is the sandbox's own: the host asked for
 * it (`Sandbox.cancel`), so there is nothing to report to the server.
 */
export type ChunkErrorKind = "throw" | "timeout" | "oom" | "invalid-result" | "cancelled";

export interface ChunkError {
  kind: ChunkErrorKind;
  /** At most {@link MAX_ERROR_MESSAGE_BYTES} bytes of UTF-8. */
  message: string;
}

/** One chunk's result: the work function's return value as a JSON string, or why there is none. */
export type ChunkOutcome =
  | { key: string; ok: true; resultJson: string; cpuMs: number }
  | { key: string; ok: false; error: ChunkError; cpuMs: number };

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
}

/** What the frame hands a worker to load: the code, and the task's module compiled once by the frame. */
export interface WorkerLoad {
  code: string;
  wasm: WebAssembly.Module | null;
  webgpu: boolean;
}

/** One input to run. `key` identifies the chunk in outcomes and progress (e.g. a lease id). */
export interface SandboxChunk {
  key: string;
  index: number;
  input: unknown;
  /**
   * Which export runs: the default `work(input, ctx)`, or `reduce(results)` for the
   * task's reduce chunks (DESIGN §5), whose input is an array of results.
   */
  entry?: "work" | "reduce" | undefined;
}

export interface ChunkProgress {
  key: string;
  /** 0..1 */
  fraction: number;
  message?: string;
}

export const MAX_THREADS = 64;
export const MAX_RESULT_BYTES = 1024 * 1024;
export const MAX_ERROR_MESSAGE_BYTES = 4096;
/** Progress reaches the host at most this often per chunk (4/s). */
export const PROGRESS_INTERVAL_MS = 250;

/** Window messages of the handshake; nothing else ever crosses a window boundary. */
export const READY_MESSAGE = "cc-sandbox-ready";
export const CONNECT_MESSAGE = "cc-sandbox-connect";

/** What the frame exposes to the host over the handshake's MessagePort. */
export interface FrameApi {
  configure(options: { threads: number }): void;
  runBatch(
    task: SandboxTask,
    chunks: SandboxChunk[],
    onProgress?: (progress: ChunkProgress) => void,
  ): Promise<ChunkOutcome[]>;
  /** Cancels chunks by key, waiting or running: they end as `cancelled` (see `Sandbox.cancel`). */
  cancel(keys: string[]): void;
  ping(): "pong";
}

export type LoadResult = { ok: true } | { ok: false; message: string };

/** What a worker exposes to the frame. Calls to `run` execute one at a time, in order. */
export interface WorkerApi {
  load(task: WorkerLoad): Promise<LoadResult>;
  run(chunk: SandboxChunk, timeoutMs: number): Promise<ChunkOutcome>;
  /** Aborts `ctx.signal` of the chunk with this key (running or queued in the worker). */
  cancel(key: string): void;
}

/**
 * Plain (non-Comlink) messages a worker posts to the frame. Work code can forge these,
 * so the frame only trusts them about the chunk it already knows the worker is running.
 */
export type WorkerNotice =
  | { type: "cc-chunk-start"; key: string }
  | { type: "cc-chunk-progress"; key: string; fraction: number; message?: string };

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
