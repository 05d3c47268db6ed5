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

/** The `ctx` a work function receives (DESIGN §3). */
export interface WorkContext {
  index: number;
  progress(fraction: number, message?: string): void;
  /** Aborted when the chunk's deadline passes (reason: a `TimeoutError`) or it is cancelled (an `AbortError`). */
  signal: AbortSignal;
  /** The task's module, instantiated once per worker; `undefined` when the task has none. */
  wasm: WebAssembly.Instance | undefined;
  /** A GPUDevice when the task requires WebGPU and this browser has an adapter. */
  gpu: GPUDevice | undefined;
}

export type WorkFunction = (input: unknown, ctx: WorkContext) => unknown;

/** The work code's exports the sandbox calls (DESIGN §3). */
export interface WorkModule {
  work: WorkFunction;
  reduce: WorkFunction | undefined;
  /** Runs on every result before it leaves the worker, so honest copies agree when hashed. */
  canonicalize: ((result: unknown) => unknown) | undefined;
}

export interface ChunkEnvironment {
  timeoutMs: number;
  notify: (notice: WorkerNotice) => void;
  /** Aborted by the worker when the frame cancels this chunk; the deadline is added here. */
  controller: AbortController;
  wasm: WebAssembly.Instance | undefined;
  gpu: GPUDevice | undefined;
}

/** Runs one chunk and turns whatever happens into an outcome; never throws. */
export async function runChunk(module: WorkModule, chunk: SandboxChunk, env: ChunkEnvironment): Promise<ChunkOutcome> {
  const { key, index, input } = chunk;
  const work = chunk.entry === "reduce" ? module.reduce : module.work;
  if (!work) return failure(key, "throw", "this is a reduce chunk, but the work code has no `export function reduce(results)`", 0);
  const { timeoutMs, notify, controller, gpu } = env;
  notify({ type: "cc-chunk-start", key });
  // Lets cooperative (async) work stop at the deadline; a busy loop is stopped by the
  // frame terminating this worker instead.
  const deadline = setTimeout(() => controller.abort(new DOMException("the chunk's deadline passed", "TimeoutError")), timeoutMs);
  // A GPU queue can hold work long after the JS that submitted it gave up: destroying the
  // device drops it (DESIGN §7.7). The worker requests a new device for the next chunk.
  const destroyGpu = (): void => gpu?.destroy();
  controller.signal.addEventListener("abort", destroyGpu, { once: true });
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
    wasm: env.wasm,
    gpu,
  };

  const started = performance.now();
  let result: unknown;
  try {
    if (controller.signal.aborted) return aborted(key, controller.signal, timeoutMs, 0);
    result = await work(input, ctx);
    if (module.canonicalize) result = await module.canonicalize(result);
  } catch (err) {
    const cpuMs = performance.now() - started;
    if (controller.signal.aborted) return aborted(key, controller.signal, timeoutMs, cpuMs);
    return failure(key, "throw", describeError(err), cpuMs);
  } finally {
    clearTimeout(deadline);
    controller.signal.removeEventListener("abort", destroyGpu);
  }
  const cpuMs = performance.now() - started;
  if (controller.signal.aborted) return aborted(key, controller.signal, timeoutMs, cpuMs);
  return serialize(key, result, cpuMs);
}

function aborted(key: string, signal: AbortSignal, timeoutMs: number, cpuMs: number): ChunkOutcome {
  if ((signal.reason as { name?: unknown } | undefined)?.name === "TimeoutError") {
    return failure(key, "timeout", `the chunk ran longer than its timeout of ${timeoutMs} ms`, cpuMs);
  }
  return failure(key, "cancelled", "the chunk was cancelled", cpuMs);
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
