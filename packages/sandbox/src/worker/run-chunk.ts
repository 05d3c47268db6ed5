import {
  type ChunkOutcome,
  type SandboxChunk,
  type WorkerNotice,
  MAX_RESULT_BYTES,
  PROGRESS_INTERVAL_MS,
  describeError,
  exceedsUtf8Bytes,
  failure,
  truncateUtf8,
} from "../protocol.ts";

/** The `ctx` a work function receives (DESIGN §3). `wasm` and `gpu` are seams for a later issue. */
export interface WorkContext {
  index: number;
  progress(fraction: number, message?: string): void;
  signal: AbortSignal;
  wasm: undefined;
  gpu: undefined;
}

export type WorkFunction = (input: unknown, ctx: WorkContext) => unknown;

/** Runs one chunk and turns whatever happens into an outcome; never throws. */
export async function runChunk(
  work: WorkFunction,
  chunk: SandboxChunk,
  timeoutMs: number,
  notify: (notice: WorkerNotice) => void,
): Promise<ChunkOutcome> {
  const { key, index, input } = chunk;
  notify({ type: "cc-chunk-start", key });
  // Lets cooperative (async) work stop at the deadline; a busy loop is stopped by the
  // frame terminating this worker instead.
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(new DOMException("the chunk's deadline passed", "TimeoutError")), timeoutMs);
  let lastProgressAt = -Infinity;
  const ctx: WorkContext = {
    index,
    progress(fraction, message) {
      const now = performance.now();
      if (now - lastProgressAt < PROGRESS_INTERVAL_MS) return;
      lastProgressAt = now;
      const notice: WorkerNotice = { type: "cc-chunk-progress", key, fraction: Number(fraction) };
      if (message !== undefined) notice.message = truncateUtf8(String(message), 256);
      notify(notice);
    },
    signal: controller.signal,
    wasm: undefined,
    gpu: undefined,
  };

  const started = performance.now();
  let result: unknown;
  try {
    result = await work(input, ctx);
  } catch (err) {
    const cpuMs = performance.now() - started;
    if (controller.signal.aborted) return timedOut(key, timeoutMs, cpuMs);
    return failure(key, "throw", describeError(err), cpuMs);
  } finally {
    clearTimeout(deadline);
  }
  const cpuMs = performance.now() - started;
  if (controller.signal.aborted) return timedOut(key, timeoutMs, cpuMs);
  return serialize(key, result, cpuMs);
}

function timedOut(key: string, timeoutMs: number, cpuMs: number): ChunkOutcome {
  return failure(key, "timeout", `the chunk ran longer than its timeout of ${timeoutMs} ms`, cpuMs);
}

function serialize(key: string, result: unknown, cpuMs: number): ChunkOutcome {
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch (err) {
    return failure(key, "invalid-result", `the result is not JSON-serializable: ${describeError(err)}`, cpuMs);
  }
  if (json === undefined) {
    return failure(key, "invalid-result", `the work function returned ${typeof result}; it must return a JSON value`, cpuMs);
  }
  if (exceedsUtf8Bytes(json, MAX_RESULT_BYTES)) {
    return failure(key, "invalid-result", `the result is larger than ${MAX_RESULT_BYTES} bytes of JSON`, cpuMs);
  }
  return { key, ok: true, resultJson: json, cpuMs };
}
