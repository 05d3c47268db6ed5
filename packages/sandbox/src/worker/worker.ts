// Entry of the worker bootstrap: one classic Blob worker per thread, started by the frame
// (docs/architecture.md, "The sandbox"). It speaks a few plain messages with the frame (no
// Comlink: one message each way per chunk), and before work code loads it takes what it needs
// of the worker's scope and leaves work code an allow-listed one (scope.ts) with counting
// allocators (memory/) and tracked timers (pending-work.ts).
import { type ChunkOutcome, describeError, type FromWorker, failure, type SandboxChunk, type ToWorker, type WorkerLoad } from "../protocol.ts";
import { captureConsole } from "./console-capture.ts";
import { type ChunkClock, chunkFinalizationRegistry } from "./finalization.ts";
import { apply } from "./intrinsics.ts";
import { installMemoryBudget, type MemoryBudget } from "./memory/budget.ts";
import { createPacer, type Pacer } from "./pacer.ts";
import { type PendingWork, pendingWork } from "./pending-work.ts";
import { runChunk, type WorkFunction, type WorkModule } from "./run-chunk.ts";
import { guardGlobalEvents, restrictScope } from "./scope.ts";

// Taken before work code can reach (or replace) them.
/** The parts of DedicatedWorkerGlobalScope used here (the DOM lib types globals as a Window's). */
interface WorkerScope {
  navigator: Navigator & { gpu?: GPU };
  postMessage(message: unknown): void;
  addEventListener(type: string, listener: (event: Event & { data?: unknown }) => void): void;
  setTimeout: typeof setTimeout;
  setInterval: typeof setInterval;
  clearTimeout: typeof clearTimeout;
}
const scope = globalThis as unknown as WorkerScope;
const gpu = scope.navigator.gpu;
const postToFrame = scope.postMessage.bind(scope) as (message: FromWorker) => void;
const timers = { setTimeout: scope.setTimeout.bind(scope), setInterval: scope.setInterval.bind(scope), clearTimeout: scope.clearTimeout.bind(scope) };
const now = performance.now.bind(performance);
const timeOrigin = performance.timeOrigin;
const randomValues = crypto.getRandomValues.bind(crypto) as (into: Uint32Array) => void;
const instantiate = WebAssembly.instantiate;
const createObjectURL = URL.createObjectURL;
const revokeObjectURL = URL.revokeObjectURL;
const BlobOf = Blob;
const Channel = MessageChannel;
const closeWorker = (scope as unknown as { close(): void }).close.bind(scope);
const PromiseOf = Promise;

// Uncaught errors and rejections of work code stay in the worker. Propagated, each is an event
// in the frame's one thread: a flood of them made the frame stop answering, and its reset
// failed the other chunks of the batch.
scope.addEventListener("error", (event) => event.preventDefault());
scope.addEventListener("unhandledrejection", (event) => event.preventDefault());
scope.addEventListener("message", (event) => onMessage(event.data as ToWorker));

/**
 * Work code's console: lines go to the running chunk (console-capture.ts), never to the
 * browser's console, where a line can be megabytes and an inspector copies each.
 */
const capture = captureConsole(now, (key, logged) => postToFrame(logged.truncated ? { t: "console", key, lines: logged.lines, truncated: true } : { t: "console", key, lines: logged.lines }));

interface Job {
  chunk: SandboxChunk;
  timeoutMs: number;
  restFactor: number;
  controller: AbortController;
}

interface Loaded {
  module: WorkModule;
  wasm: WebAssembly.Instance | undefined;
  webgpu: boolean;
  pending: PendingWork;
  budget: MemoryBudget;
}

let loaded: Loaded | { error: string } = { error: "no work code was loaded" };
let loading = false;
/** Chunks sent and not started, from `next` on (index syntax only: see intrinsics.ts). */
let jobs: (Job | undefined)[] = [];
let next = 0;
let current: Job | undefined;
let running = false;
/** Set once a chunk went over budget or left work running: this worker runs nothing more. */
let retired = false;
/** Which chunk is running, for work code's FinalizationRegistry (finalization.ts). */
const clock: ChunkClock = { generation: 0, running: false };

function onMessage(message: ToWorker): void {
  switch (message?.t) {
    case "load":
      if (loading) return;
      loading = true;
      void load(message.load).then((result) => postToFrame(result.ok ? { t: "loaded", ok: true } : { t: "loaded", ok: false, message: result.message }));
      return;
    case "run":
      if (retired) return;
      jobs[jobs.length] = { chunk: message.chunk, timeoutMs: message.timeoutMs, restFactor: typeof message.restFactor === "number" ? message.restFactor : 0, controller: new AbortController() };
      if (!running) void drain();
      return;
    case "cancel": {
      const reason = new DOMException("the chunk was cancelled", "AbortError");
      if (current?.chunk.key === message.key) current.controller.abort(reason);
      for (let i = next; i < jobs.length; i++) if (jobs[i]?.chunk.key === message.key) jobs[i]!.controller.abort(reason);
      return;
    }
  }
}

// A task of its own after each chunk: the outcome leaves from there, so a chunk that left a
// promise or microtask loop behind never gets one and ends at its deadline. A MessageChannel
// task is not clamped like a nested setTimeout(0) (4 ms).
const turns = new Channel();
let turnWaiter: (() => void) | undefined;
turns.port1.onmessage = () => turnWaiter?.();
function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    turnWaiter = resolve;
    turns.port2.postMessage(null);
  });
}

// The running chunk's CPU time and in-chunk rests (pacer.ts): ctx waits count with the timers.
let ctxWaits = 0;
let pending: PendingWork | undefined;
const pacer: Pacer = createPacer({
  now,
  waits: () => ctxWaits + (pending ? pending.waits() : 0),
  operations: () => (pending ? pending.operations() : 0),
  Channel,
});
const pauses = new Channel();
// A queue by index only (see intrinsics.ts): work code may replace Array's methods.
let pauseWaiters: ((() => void) | undefined)[] = [];
let pauseHead = 0;
pauses.port1.onmessage = () => {
  const waiter = pauseWaiters[pauseHead];
  pauseWaiters[pauseHead++] = undefined;
  if (pauseHead === pauseWaiters.length) {
    pauseWaiters = [];
    pauseHead = 0;
  }
  waiter?.();
};

let pausing: Promise<void> | undefined;
let pausingGeneration = 0;

/**
 * Resolves after `ms` (the next turn for 0), as a wait of the running chunk; never once that
 * chunk ended, so work code cannot run between chunks through it.
 */
function pause(ms: number): Promise<void> {
  const generation = clock.generation;
  // One at a time: work code calling ctx.progress in a hot loop without awaiting it shares
  // the pending one instead of piling up a timer or message per call.
  if (pausing && pausingGeneration === generation) return pausing;
  pausingGeneration = generation;
  pausing = new PromiseOf<void>((resolve) => {
    ctxWaits += 1;
    const done = (): void => {
      // A chunk that ended took its waits with it (drain resets them).
      if (!clock.running || clock.generation !== generation) return;
      ctxWaits -= 1;
      pausing = undefined;
      pacer.enter();
      resolve();
    };
    if (ms > 0) timers.setTimeout(done, ms);
    else {
      pauseWaiters[pauseWaiters.length] = done;
      pauses.port2.postMessage(null);
    }
  });
  return pausing;
}

/** Runs the queued chunks one at a time, each posting its outcome from a task after it returned. */
async function drain(): Promise<void> {
  running = true;
  while (next < jobs.length && !retired) {
    const job = jobs[next]!;
    jobs[next++] = undefined;
    if (next === jobs.length) {
      jobs = [];
      next = 0;
    }
    current = job;
    capture.begin(job.chunk.key);
    clock.generation += 1;
    clock.running = true;
    const outcome = await run(job);
    clock.running = false;
    ctxWaits = 0;
    pausing = undefined;
    // At once, in the same microtask as the return: no timer it left gets a turn.
    const { unsettled } = "module" in loaded ? loaded.pending.finish() : { unsettled: 0 };
    const logged = capture.end();
    await nextTurn();
    current = undefined;
    const settled = settle(outcome, unsettled);
    // Only a chunk that wrote to its console carries one: nothing is added for the others.
    if (logged && settled.t === "outcome") settled.outcome = { ...settled.outcome, console: logged };
    postToFrame(settled);
    // A retired worker runs no further task, not even the continuation of what its chunk
    // left unsettled, in the moment before the frame terminates it.
    if (retired) closeWorker();
  }
  running = false;
}

async function run(job: Job): Promise<ChunkOutcome> {
  const { chunk, timeoutMs, controller } = job;
  if (!("module" in loaded)) return failure(chunk.key, "throw", loaded.error, 0);
  const gpuDevice = loaded.webgpu ? await device() : undefined;
  try {
    return await runChunk(loaded.module, chunk, {
      timeoutMs,
      controller,
      wasm: loaded.wasm,
      gpu: gpuDevice,
      progress,
      checkpoint,
      pacer,
      pause,
      restFactor: job.restFactor,
      setTimeout: timers.setTimeout,
      clearTimeout: timers.clearTimeout,
      now,
    });
  } finally {
    // An aborted chunk's device was destroyed (runChunk does it at the abort); the next chunk gets a new one.
    if (gpuDevice && controller.signal.aborted) {
      gpuDevice.destroy();
      gpuDevicePromise = undefined;
    }
  }
}

/**
 * The outcome as posted. A chunk over its budget fails as oom; one that returned with
 * operations unsettled fails (their continuations would run after it, on no one's time, and
 * the result came before the work it started was done). Either retires the worker.
 */
function settle(outcome: ChunkOutcome, unsettled: number): FromWorker {
  if (!("module" in loaded)) return { t: "outcome", outcome };
  const over = loaded.budget.exceeded;
  if (over !== null) {
    retired = true;
    return { t: "outcome", outcome: failure(outcome.key, "oom", over, outcome.cpuMs), replace: true };
  }
  if (unsettled > 0) {
    retired = true;
    const message = `the work function returned with ${unsettled} operation${unsettled > 1 ? "s" : ""} (WebAssembly, crypto.subtle or WebGPU) still unsettled; await them before returning`;
    return { t: "outcome", outcome: failure(outcome.key, "throw", message, outcome.cpuMs), replace: true };
  }
  return { t: "outcome", outcome };
}

/** Progress leaves at most 4 times a second per chunk (run-chunk.ts throttles it before it gets here). */
function progress(key: string, fraction: number, message: string | undefined): void {
  postToFrame(message === undefined ? { t: "progress", key, fraction } : { t: "progress", key, fraction, message });
}

/** At most one per CHECKPOINT_INTERVAL_MS per chunk (run-chunk.ts throttles and checks it). */
function checkpoint(key: string, json: string): void {
  postToFrame({ t: "checkpoint", key, json });
}

/** Requested on first use and again after a chunk that was aborted destroyed it. */
let gpuDevicePromise: Promise<GPUDevice | undefined> | undefined;

function device(): Promise<GPUDevice | undefined> {
  if (gpuDevicePromise) return gpuDevicePromise;
  const requested: Promise<GPUDevice | undefined> = (async () => {
    const adapter = await gpu?.requestAdapter();
    const fresh = await adapter?.requestDevice();
    // A device lost for any reason (a GPU reset, our own destroy) is requested again.
    void fresh?.lost.then(() => {
      if (gpuDevicePromise === requested) gpuDevicePromise = undefined;
    });
    return fresh;
  })().catch(() => undefined);
  gpuDevicePromise = requested;
  return requested;
}

async function load({ code, wasm, wasmLimits, webgpu, memoryBytes }: WorkerLoad): Promise<{ ok: true } | { ok: false; message: string }> {
  const refuse = (error: string) => {
    loaded = { error };
    return { ok: false as const, message: error };
  };
  const tracked = pendingWork(timers, { owed: () => pacer.owed(), enter: () => pacer.enter() });
  pending = tracked;
  let budget: MemoryBudget;
  try {
    budget = installMemoryBudget(memoryBytes, tracked, randomValues);
    if (webgpu) trackGpuOperations(tracked);
    const failed = restrictScope({
      webgpu,
      gpu,
      replacements: {
        ...budget.globals,
        ...tracked.timers,
        FinalizationRegistry: chunkFinalizationRegistry(clock),
        console: capture.console,
        performance: Object.freeze({ now, timeOrigin, toJSON: () => ({ timeOrigin }) }),
      },
    });
    delete (URL as { createObjectURL?: unknown }).createObjectURL;
    delete (URL as { revokeObjectURL?: unknown }).revokeObjectURL;
    guardGlobalEvents();
    if (failed.length > 0) return refuse(`the sandbox could not remove ${failed.join(", ")} from the worker; refusing to run work code`);
  } catch (err) {
    return refuse(`the sandbox could not prepare the worker: ${describeError(err)}`);
  }
  const url = createObjectURL(new BlobOf([code], { type: "text/javascript" }));
  let module: { default?: unknown; reduce?: unknown; canonicalize?: unknown; wasmImports?: unknown };
  try {
    module = (await import(url)) as typeof module;
  } catch (err) {
    const name = err instanceof Error ? `${err.name}: ` : "";
    return refuse(`the work code failed to load: ${name}${describeError(err)}`);
  } finally {
    revokeObjectURL(url);
  }
  if (typeof module.default !== "function") {
    return refuse("the work code has no default export function (expected `export default function work(input, ctx) { … }`)");
  }
  let instance: WebAssembly.Instance | undefined;
  if (wasm) {
    try {
      // An optional `export const wasmImports = {...}` (or a function returning it) feeds the module's imports.
      const imports = typeof module.wasmImports === "function" ? await module.wasmImports() : module.wasmImports;
      instance = await instantiate(wasm, (imports ?? {}) as WebAssembly.Imports);
      if (wasmLimits) budget.countInstance(instance, wasmLimits);
    } catch (err) {
      return refuse(`the task's WebAssembly module failed to instantiate: ${describeError(err)}`);
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
    pending: tracked,
    budget,
  };
  if (budget.exceeded !== null) return refuse(budget.exceeded);
  // Work code may have started timers or operations while loading: they count against its first chunk.
  // Warm the device now, in the load allowance, rather than in the first chunk's time.
  if (webgpu) await device();
  return { ok: true };
}

/** WebGPU's promise-returning calls count as pending work until they settle (pending-work.ts). */
function trackGpuOperations(pending: PendingWork): void {
  const methods: [string, string][] = [
    ["GPUBuffer", "mapAsync"],
    ["GPUQueue", "onSubmittedWorkDone"],
    ["GPUDevice", "createComputePipelineAsync"],
    ["GPUDevice", "createRenderPipelineAsync"],
    ["GPUDevice", "popErrorScope"],
    ["GPUShaderModule", "getCompilationInfo"],
  ];
  for (const [type, name] of methods) {
    const proto = (scope as unknown as Record<string, { prototype: Record<string, unknown> } | undefined>)[type]?.prototype;
    const original = proto?.[name];
    if (!proto || typeof original !== "function") continue;
    Object.defineProperty(proto, name, {
      value: {
        [name](this: unknown, ...args: unknown[]) {
          return pending.track(apply(original as (...a: unknown[]) => Promise<unknown>, this, args) as Promise<unknown>);
        },
      }[name],
      writable: true,
      configurable: true,
    });
  }
}
