import { type Remote, releaseProxy } from "comlink";
import { type ChunkOutcome, type ChunkProgress, type SandboxChunk, type SandboxTask, type WorkerLoad, MAX_THREADS, describeError, failure } from "../protocol.ts";
import { clearOriginStorage } from "./clear-storage.ts";
import { type Dispatch, dispatch } from "./dispatch.ts";
import { type WorkerSlot, startWorkerSlot } from "./worker-slot.ts";

/** The frame's workers: one per thread, all with the current task's code loaded. */
export class WorkerPool {
  #workerUrl: string;
  #threads = 1;
  #task: { taskId: string; codeSha256: string; wasmSha256: string | null; load: WorkerLoad } | undefined;
  #slots: WorkerSlot[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  /** Batches queued or running; cancelled keys are kept while there are any, for batches not started yet. */
  #pending = 0;
  #cancelled = new Set<string>();
  #active: Dispatch | undefined;

  constructor(workerSource: string) {
    this.#workerUrl = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
  }

  /** Takes effect from the next batch. */
  configure(threads: number): void {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
    }
    this.#threads = threads;
  }

  /** Batches run one after another: a task switch must not pull workers from under a running batch. */
  runBatch(
    task: SandboxTask,
    chunks: SandboxChunk[],
    onProgress?: Remote<(progress: ChunkProgress) => void>,
  ): Promise<ChunkOutcome[]> {
    this.#pending += 1;
    const run = this.#queue.then(() => this.#run(task, chunks, onProgress));
    this.#queue = run.catch(() => {}).finally(() => {
      this.#pending -= 1;
      if (this.#pending === 0) this.#cancelled.clear();
    });
    return run;
  }

  /** Cancels chunks of the running batch and of batches still queued. */
  cancel(keys: string[]): void {
    if (!Array.isArray(keys) || this.#pending === 0) return;
    const strings = keys.filter((key): key is string => typeof key === "string");
    for (const key of strings) this.#cancelled.add(key);
    this.#active?.cancel(strings);
  }

  async #run(
    task: SandboxTask,
    chunks: SandboxChunk[],
    onProgress?: Remote<(progress: ChunkProgress) => void>,
  ): Promise<ChunkOutcome[]> {
    try {
      checkBatch(task, chunks);
      const wasmSha256 = task.wasm ? (task.wasmSha256 ?? null) : null;
      const webgpu = task.webgpu === true;
      let current = this.#task;
      if (
        current?.taskId !== task.taskId ||
        current.codeSha256 !== task.codeSha256 ||
        current.wasmSha256 !== wasmSha256 ||
        current.load.webgpu !== webgpu
      ) {
        this.#task = undefined;
        this.#terminateAll();
        await clearOriginStorage();
        // Compiled once here; every worker of the task instantiates the same Module.
        const wasm = task.wasm ? await compileWasm(task.wasm) : null;
        if (typeof wasm === "string") return chunks.map((chunk) => failure(chunk.key, "throw", wasm, 0));
        current = { taskId: task.taskId, codeSha256: task.codeSha256, wasmSha256, load: { code: task.code, wasm, webgpu } };
        this.#task = current;
      }
      const load = current.load;
      const wanted = Math.min(this.#threads, chunks.length);
      for (const surplus of this.#slots.splice(this.#threads)) surplus.terminate();
      while (this.#slots.length < wanted) this.#slots.push(startWorkerSlot(this.#workerUrl, load, task.timeoutMs));
      const running = dispatch({
        slots: this.#slots,
        replace: (slot) => {
          slot.terminate();
          return startWorkerSlot(this.#workerUrl, load, task.timeoutMs);
        },
        chunks,
        timeoutMs: task.timeoutMs,
        onProgress,
      });
      this.#active = running;
      if (this.#cancelled.size > 0) running.cancel(chunks.map((chunk) => chunk.key).filter((key) => this.#cancelled.has(key)));
      return await running.outcomes;
    } finally {
      this.#active = undefined;
      // Between batches every kept worker is idle and loaded (or failed to load, which
      // the next batch of this task will report again without a new try).
      for (const slot of this.#slots) if (slot.inFlight.length > 0) slot.terminate();
      this.#slots = this.#slots.filter((slot) => !slot.dead);
      onProgress?.[releaseProxy]();
    }
  }

  #terminateAll(): void {
    for (const slot of this.#slots.splice(0)) slot.terminate();
  }
}

async function compileWasm(bytes: Uint8Array): Promise<WebAssembly.Module | string> {
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    return `the task's WebAssembly module does not compile: ${describeError(err)}`;
  }
}

function checkBatch(task: SandboxTask, chunks: SandboxChunk[]): void {
  if (typeof task.code !== "string" || typeof task.taskId !== "string" || typeof task.codeSha256 !== "string") {
    throw new TypeError("task needs string taskId, code and codeSha256");
  }
  if (task.wasm !== undefined && task.wasm !== null && !(task.wasm instanceof Uint8Array)) throw new TypeError("task.wasm must be a Uint8Array");
  if (!Number.isFinite(task.timeoutMs) || task.timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${task.timeoutMs}`);
  }
  if (!Array.isArray(chunks)) throw new TypeError("chunks must be an array");
  const keys = new Set(chunks.map((chunk) => chunk.key));
  if (keys.size !== chunks.length || ![...keys].every((key) => typeof key === "string")) {
    throw new TypeError("every chunk needs a distinct string key");
  }
}
