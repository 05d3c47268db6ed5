import { type Remote, releaseProxy } from "comlink";
import { type ChunkOutcome, type ChunkProgress, type SandboxChunk, type SandboxTask, MAX_THREADS } from "../protocol.ts";
import { clearOriginStorage } from "./clear-storage.ts";
import { dispatch } from "./dispatch.ts";
import { type WorkerSlot, startWorkerSlot } from "./worker-slot.ts";

/** The frame's workers: one per thread, all with the current task's code loaded. */
export class WorkerPool {
  #workerUrl: string;
  #threads = 1;
  #task: Pick<SandboxTask, "taskId" | "codeSha256"> | undefined;
  #slots: WorkerSlot[] = [];
  #queue: Promise<unknown> = Promise.resolve();

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
    const run = this.#queue.then(() => this.#run(task, chunks, onProgress));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #run(
    task: SandboxTask,
    chunks: SandboxChunk[],
    onProgress?: Remote<(progress: ChunkProgress) => void>,
  ): Promise<ChunkOutcome[]> {
    try {
      checkBatch(task, chunks);
      if (this.#task?.taskId !== task.taskId || this.#task.codeSha256 !== task.codeSha256) {
        this.#terminateAll();
        await clearOriginStorage();
        this.#task = { taskId: task.taskId, codeSha256: task.codeSha256 };
      }
      const wanted = Math.min(this.#threads, chunks.length);
      for (const surplus of this.#slots.splice(this.#threads)) surplus.terminate();
      while (this.#slots.length < wanted) this.#slots.push(startWorkerSlot(this.#workerUrl, task.code, task.timeoutMs));
      return await dispatch({
        slots: this.#slots,
        replace: (slot) => {
          slot.terminate();
          return startWorkerSlot(this.#workerUrl, task.code, task.timeoutMs);
        },
        chunks,
        timeoutMs: task.timeoutMs,
        onProgress,
      });
    } finally {
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

function checkBatch(task: SandboxTask, chunks: SandboxChunk[]): void {
  if (typeof task.code !== "string" || typeof task.taskId !== "string" || typeof task.codeSha256 !== "string") {
    throw new TypeError("task needs string taskId, code and codeSha256");
  }
  if (!Number.isFinite(task.timeoutMs) || task.timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${task.timeoutMs}`);
  }
  if (!Array.isArray(chunks)) throw new TypeError("chunks must be an array");
  const keys = new Set(chunks.map((chunk) => chunk.key));
  if (keys.size !== chunks.length || ![...keys].every((key) => typeof key === "string")) {
    throw new TypeError("every chunk needs a distinct string key");
  }
}
