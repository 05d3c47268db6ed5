// Entry of the worker bootstrap: one classic Blob worker per thread, started by the frame.
import { expose } from "comlink";
import { type LoadResult, type WorkerApi, type WorkerLoad, type WorkerNotice, describeError, failure } from "../protocol.ts";
import { lockDownWorkerGlobal } from "./lockdown.ts";
import { type WorkFunction, type WorkModule, runChunk } from "./run-chunk.ts";

// Taken before work code can replace them.
const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
const notLockedDown = lockDownWorkerGlobal();

// The DOM lib types `postMessage` as Window's (with a target origin); this is a worker.
const post = (globalThis as unknown as { postMessage(message: WorkerNotice): void }).postMessage.bind(globalThis);

interface Loaded {
  module: WorkModule;
  wasm: WebAssembly.Instance | undefined;
  webgpu: boolean;
}

let loaded: Loaded | { error: string } = { error: "no work code was loaded" };
let queue: Promise<unknown> = Promise.resolve();
/** Chunks sent to this worker and not finished, by key: `cancel` aborts them. */
const controllers = new Map<string, AbortController>();
// Comlink posts a chunk's outcome a few microtasks after it settles, so a next chunk
// started right away (a microtask sooner) that spins would keep that outcome in the
// worker forever: each chunk starts in a task of its own, after the previous answer left.
// A MessageChannel task is not clamped like a nested setTimeout(0) (4 ms).
const turns = new MessageChannel();
const turnWaiters: (() => void)[] = [];
turns.port1.onmessage = () => turnWaiters.shift()?.();
function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    turnWaiters.push(resolve);
    turns.port2.postMessage(null);
  });
}

/** Requested on first use and again after a chunk that was aborted destroyed it. */
let device: Promise<GPUDevice | undefined> | undefined;

function gpuDevice(): Promise<GPUDevice | undefined> {
  if (device) return device;
  const requested: Promise<GPUDevice | undefined> = (async () => {
    const adapter = await gpu?.requestAdapter();
    const fresh = await adapter?.requestDevice();
    // A device lost for any reason (a GPU reset, our own destroy) is requested again.
    void fresh?.lost.then(() => {
      if (device === requested) device = undefined;
    });
    return fresh;
  })().catch(() => undefined);
  device = requested;
  return requested;
}

async function load({ code, wasm, webgpu }: WorkerLoad): Promise<LoadResult> {
  if (notLockedDown.length > 0) {
    loaded = { error: `the sandbox could not remove ${notLockedDown.join(", ")} from the worker; refusing to run work code` };
    return { ok: false, message: loaded.error };
  }
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  let module: { default?: unknown; reduce?: unknown; canonicalize?: unknown; wasmImports?: unknown };
  try {
    module = (await import(url)) as typeof module;
  } catch (err) {
    const name = err instanceof Error ? `${err.name}: ` : "";
    loaded = { error: `the work code failed to load: ${name}${describeError(err)}` };
    return { ok: false, message: loaded.error };
  } finally {
    URL.revokeObjectURL(url);
  }
  if (typeof module.default !== "function") {
    loaded = { error: "the work code has no default export function (expected `export default function work(input, ctx) { … }`)" };
    return { ok: false, message: loaded.error };
  }
  let instance: WebAssembly.Instance | undefined;
  if (wasm) {
    try {
      // An optional `export const wasmImports = {...}` (or a function returning it) feeds the module's imports.
      const imports = typeof module.wasmImports === "function" ? await module.wasmImports() : module.wasmImports;
      instance = await WebAssembly.instantiate(wasm, (imports ?? {}) as WebAssembly.Imports);
    } catch (err) {
      loaded = { error: `the task's WebAssembly module failed to instantiate: ${describeError(err)}` };
      return { ok: false, message: loaded.error };
    }
  }
  const optional = <F>(value: unknown) => (typeof value === "function" ? (value as F) : undefined);
  loaded = {
    module: {
      work: module.default as WorkFunction,
      reduce: optional<WorkFunction>(module.reduce),
      canonicalize: optional<(result: unknown) => unknown>(module.canonicalize),
    },
    wasm: instance,
    webgpu,
  };
  // Warm the device now, in the load allowance, rather than in the first chunk's time.
  if (webgpu) await gpuDevice();
  return { ok: true };
}

const api: WorkerApi = {
  load,
  run(chunk, timeoutMs) {
    const controller = new AbortController();
    controllers.set(chunk.key, controller);
    // The frame pipelines several chunks; run them one at a time so each has the thread.
    const outcome = queue.then(async () => {
      await nextTurn();
      if (!("module" in loaded)) return failure(chunk.key, "throw", loaded.error, 0);
      const gpu = loaded.webgpu ? await gpuDevice() : undefined;
      try {
        return await runChunk(loaded.module, chunk, { timeoutMs, notify: post, controller, wasm: loaded.wasm, gpu });
      } finally {
        // An aborted chunk's device was destroyed (runChunk does it at the abort); the next chunk gets a new one.
        if (gpu && controller.signal.aborted) {
          gpu.destroy();
          device = undefined;
        }
      }
    }).finally(() => controllers.delete(chunk.key));
    queue = outcome;
    return outcome;
  },
  cancel(key) {
    controllers.get(key)?.abort(new DOMException("the chunk was cancelled", "AbortError"));
  },
};

expose(api);
