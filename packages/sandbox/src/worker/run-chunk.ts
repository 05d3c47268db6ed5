import { jsonTextTooDeep } from "@crowdcompute/contract/json-limits";
import { MAX_CHECKPOINT_CHARS, MAX_JSON_DEPTH, MAX_PROGRESS_MESSAGE_CHARS, MAX_RESULT_BYTES } from "@crowdcompute/contract/limits";
import { CHECKPOINT_INTERVAL_MS, type ChunkOutcome, describeError, exceedsUtf8Bytes, failure, PROGRESS_INTERVAL_MS, type SandboxChunk, truncateUtf8 } from "../protocol.ts";
import type { Pacer } from "./pacer.ts";

const stringify = JSON.stringify;

/** The `ctx` a work function receives. */
interface WorkContext {
  index: number;
  /**
   * Reports how far the chunk is (at most 4 a second leave the worker). The promise resolves
   * once the worker rested as long as the volunteer's CPU share asks: awaited, it paces the
   * chunk like `ctx.yield()` (docs/architecture.md, "CPU time and the CPU share").
   */
  progress(fraction: number, message?: string): Promise<void>;
  /**
   * Lets the worker's event loop run and rests as long as the volunteer's CPU share asks: a
   * long chunk that awaits it every ~100 ms or less keeps to the share inside the chunk.
   */
  yield(): Promise<void>;
  /**
   * Saves the chunk's state (a JSON value, at most 256 KiB of JSON text, 64 levels deep) so
   * that a later attempt at this chunk, on another volunteer if this one vanishes or times out,
   * starts from it (`ctx.resume`). At most one is kept per 500 ms: a call sooner returns false
   * and saves nothing. Throws for a state that is not JSON or is over the limits.
   */
  checkpoint(state: unknown): boolean;
  /** The latest checkpoint of an earlier attempt at this chunk, or undefined (start from scratch). */
  resume: unknown;
  /** Aborted when the chunk's deadline passes (reason: a `TimeoutError`) or it is cancelled (an `AbortError`). */
  signal: AbortSignal;
  /** The task's module, instantiated once per worker; `undefined` when the task has none. */
  wasm: WebAssembly.Instance | undefined;
  /** A GPUDevice when the task requires WebGPU and this browser has an adapter. */
  gpu: GPUDevice | undefined;
}

export type WorkFunction = (input: unknown, ctx: WorkContext) => unknown;

/** The work code's exports the sandbox calls. */
export interface WorkModule {
  work: WorkFunction;
  reduce: WorkFunction | undefined;
  /** Runs on every result before it leaves the worker, so honest copies agree when hashed. */
  canonicalize: ((result: unknown) => unknown) | undefined;
}

export interface ChunkEnvironment {
  timeoutMs: number;
  /** Posts progress to the frame (rate-limited by the caller too). */
  progress: (key: string, fraction: number, message: string | undefined) => void;
  /** Posts a checkpoint's JSON text to the frame (rate-limited and checked here, and again by the frame). */
  checkpoint: (key: string, json: string) => void;
  /** The browser's timers and clock, taken before work code loaded (its own timers are tracked: pending-work.ts). */
  setTimeout: typeof setTimeout;
  clearTimeout: typeof clearTimeout;
  now: () => number;
  /** The chunk's CPU time and rests (pacer.ts). */
  pacer: Pacer;
  /** Resolves after `ms` (the next turn for 0) as a wait of this chunk (worker.ts). */
  pause: (ms: number) => Promise<void>;
  /** 100 / share − 1: how long to rest per ms of CPU. */
  restFactor: number;
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
  const { timeoutMs, controller, gpu, now, pacer, pause } = env;
  const rest = (): Promise<void> => pause(pacer.owed());
  // ctx.progress only waits when a rest is owed: at 100 % it stays as cheap as it was.
  const restIfOwed = (): Promise<void> => {
    const owed = pacer.owed();
    return owed > 0 ? pause(owed) : resolved();
  };
  // Lets cooperative (async) work stop at the deadline; a busy loop is stopped by the
  // frame terminating this worker instead.
  const deadline = env.setTimeout(() => controller.abort(new DOMException("the chunk's deadline passed", "TimeoutError")), timeoutMs);
  // A GPU queue can hold work long after the JS that submitted it gave up: destroying the
  // device drops it. The worker requests a new device for the next chunk.
  const destroyGpu = (): void => gpu?.destroy();
  controller.signal.addEventListener("abort", destroyGpu, { once: true });
  let lastProgressAt = -Infinity;
  let lastCheckpointAt = -Infinity;
  const ctx: WorkContext = {
    index,
    progress(fraction, message) {
      const at = now();
      if (at - lastProgressAt >= PROGRESS_INTERVAL_MS) {
        lastProgressAt = at;
        env.progress(key, Number(fraction), message === undefined ? undefined : truncateUtf8(String(message), MAX_PROGRESS_MESSAGE_CHARS));
      }
      return restIfOwed();
    },
    yield: rest,
    checkpoint(state) {
      // A reduce chunk's input is results: short work, nothing to resume.
      if (chunk.entry === "reduce") return false;
      const at = now();
      if (at - lastCheckpointAt < CHECKPOINT_INTERVAL_MS) return false;
      let json: string | undefined;
      try {
        json = stringify(state);
      } catch (err) {
        throw new TypeError(`ctx.checkpoint(state): the state is not JSON: ${describeError(err)}`);
      }
      if (json === undefined) throw new TypeError(`ctx.checkpoint(state): the state must be a JSON value, not ${typeof state}`);
      if (json.length > MAX_CHECKPOINT_CHARS) throw new RangeError(`ctx.checkpoint(state): the state is ${json.length} characters of JSON; at most ${MAX_CHECKPOINT_CHARS}`);
      if (jsonTextTooDeep(json, MAX_JSON_DEPTH) >= 0) throw new RangeError(`ctx.checkpoint(state): the state nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
      lastCheckpointAt = at;
      env.checkpoint(key, json);
      return true;
    },
    resume: chunk.resume,
    signal: controller.signal,
    wasm: env.wasm,
    gpu,
  };

  // Rests inside the chunk only while it stays under half its timeout; the frame rests the rest after it.
  pacer.begin(env.restFactor, timeoutMs / 2);
  let result: unknown;
  try {
    if (controller.signal.aborted) return aborted(key, controller.signal, timeoutMs, pacer.end());
    result = await work(input, ctx);
    if (module.canonicalize) result = await module.canonicalize(result);
  } catch (err) {
    const cpuMs = pacer.end();
    if (controller.signal.aborted) return aborted(key, controller.signal, timeoutMs, cpuMs);
    return failure(key, "throw", describeError(err), cpuMs);
  } finally {
    env.clearTimeout(deadline);
    controller.signal.removeEventListener("abort", destroyGpu);
  }
  const cpuMs = pacer.end();
  if (controller.signal.aborted) return aborted(key, controller.signal, timeoutMs, cpuMs);
  return serialize(key, result, cpuMs);
}

/** An already resolved promise of the realm's own Promise (work code may replace the global). */
async function resolved(): Promise<void> {}

function aborted(key: string, signal: AbortSignal, timeoutMs: number, cpuMs: number): ChunkOutcome {
  if ((signal.reason as { name?: unknown } | undefined)?.name === "TimeoutError") {
    return failure(key, "timeout", `the chunk ran longer than its timeout of ${timeoutMs} ms`, cpuMs);
  }
  return failure(key, "cancelled", "the chunk was cancelled", cpuMs);
}

/**
 * The result's one serialization on its way to the server: the frame checks this text without
 * parsing it, the page splices it into the report it posts (docs/architecture.md, "Result storage").
 */
function serialize(key: string, result: unknown, cpuMs: number): ChunkOutcome {
  let json: string | undefined;
  try {
    json = stringify(result);
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
