import { TASK_MEMORY_MB } from "@crowdcompute/contract/limits";
import { type Remote, releaseProxy } from "comlink";
import { type ChunkCheckpoint, type ChunkOutcome, type ChunkProgress, describeError, failure, MAX_THREADS, type SandboxChunk, type SandboxTask, type WorkerLoad } from "../protocol.ts";
import { capWasmMemories, WasmLimitError, type WasmMemoryLimits } from "../wasm-limits.ts";
import { clearOriginStorage } from "./clear-storage.ts";
import { type Dispatch, dispatch } from "./dispatch.ts";
import { startWorkerSlot, type WorkerSlot } from "./worker-slot.ts";

type Progress = Remote<(progress: ChunkProgress) => void>;
type Checkpoint = Remote<(checkpoint: ChunkCheckpoint) => void>;

/**
 * Chunks of one task on the pool's workers: asked for by a batch, joined by the task's later
 * batches until it drains. Sessions run one after another; `run` is set once it starts.
 */
interface Session {
  identity: string;
  run: Dispatch | undefined;
  /** Batches that joined before it started. */
  backlog: { chunks: SandboxChunk[]; onProgress: Progress | undefined; onCheckpoint: Checkpoint | undefined; settle(outcomes: Promise<ChunkOutcome[]>): void }[];
  /** Lets the next session start. */
  drained(): void;
  closed: boolean;
}

/** The task's code as loaded: batches that match it may join the session running it. */
interface LoadedTask {
  identity: string;
  load: WorkerLoad;
  timeoutMs: number;
}

/** The frame's workers: one per thread, all with the current task's code loaded. */
export class WorkerPool {
  #workerUrl: string;
  #threads = 1;
  #cpuPercent = 100;
  #maxMemoryMb: number = TASK_MEMORY_MB.max;
  #task: LoadedTask | undefined;
  #slots: WorkerSlot[] = [];
  /** Settles when the last session asked for has drained: the next one waits for it. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The last session asked for, running or waiting its turn: only it may be joined. */
  #tail: Session | undefined;
  /** The session whose chunks run now. */
  #running: Session | undefined;
  /** Batches queued or running; cancelled keys are kept while there are any, for batches not started yet. */
  #pending = 0;
  #cancelled = new Set<string>();

  constructor(workerSource: string) {
    this.#workerUrl = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
  }

  /**
   * Threads and CPU share apply at once: a running session grows, retires or rests workers to
   * fit. The memory cap applies from the next session (a task's workers keep the budget they loaded with).
   */
  configure(options: { threads: number; cpuPercent?: number; maxMemoryMb?: number }): void {
    const { threads, cpuPercent = this.#cpuPercent, maxMemoryMb = this.#maxMemoryMb } = options;
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
    }
    if (!Number.isInteger(cpuPercent) || cpuPercent < 1 || cpuPercent > 100) throw new RangeError(`cpuPercent must be an integer from 1 to 100, got ${cpuPercent}`);
    checkMemoryMb(maxMemoryMb, "maxMemoryMb");
    this.#threads = threads;
    this.#cpuPercent = cpuPercent;
    this.#maxMemoryMb = maxMemoryMb;
  }

  /** Keys of the chunks at the head of each worker's queue: running, or about to. */
  running(): string[] {
    const keys: string[] = [];
    for (const slot of this.#slots) {
      const head = slot.inFlight[0];
      if (head && !slot.dead) keys.push(head.chunk.key);
    }
    return keys;
  }

  /**
   * Runs a batch; resolves with its outcomes in input order. A batch of the task of the last
   * session asked for joins that session, so the workers go from one batch to the next
   * without a gap; a batch of any other task opens a session that starts once the one before
   * has drained (a task switch must not pull workers from under a running batch).
   */
  runBatch(task: SandboxTask, chunks: SandboxChunk[], onProgress?: Progress, onCheckpoint?: Checkpoint): Promise<ChunkOutcome[]> {
    try {
      checkBatch(task, chunks);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pending += 1;
    const memoryMb = Math.min(task.memoryMb ?? TASK_MEMORY_MB.default, this.#maxMemoryMb);
    const identity = identityOf(task, memoryMb);
    let session = this.#tail;
    if (!session || session.closed || session.identity !== identity) {
      let drained!: () => void;
      const previous = this.#queue;
      this.#queue = new Promise<void>((resolve) => (drained = resolve));
      const opened: Session = { identity, run: undefined, backlog: [], drained, closed: false };
      session = this.#tail = opened;
      void previous.then(() => this.#start(task, opened, memoryMb));
    }
    const run = session.run
      ? this.#add(session, chunks, onProgress, onCheckpoint)
      : new Promise<ChunkOutcome[]>((resolve, reject) => session.backlog.push({ chunks, onProgress, onCheckpoint, settle: (outcomes) => outcomes.then(resolve, reject) }));
    return run.finally(() => {
      onProgress?.[releaseProxy]();
      onCheckpoint?.[releaseProxy]();
      this.#pending -= 1;
      if (this.#pending === 0) this.#cancelled.clear();
    });
  }

  /** Cancels chunks of the running session and of batches still queued. */
  cancel(keys: string[]): void {
    if (!Array.isArray(keys) || this.#pending === 0) return;
    const strings = keys.filter((key): key is string => typeof key === "string");
    for (const key of strings) this.#cancelled.add(key);
    this.#running?.run?.cancel(strings);
  }

  #add(session: Session, chunks: SandboxChunk[], onProgress?: Progress, onCheckpoint?: Checkpoint): Promise<ChunkOutcome[]> {
    const run = session.run!;
    const outcomes = run.add(chunks, onProgress, onCheckpoint);
    if (this.#cancelled.size > 0) run.cancel(chunks.map((chunk) => chunk.key).filter((key) => this.#cancelled.has(key)));
    // The session ends when its last batch does, unless another joined meanwhile.
    void outcomes.then(() => queueMicrotask(() => this.#closeIfDrained(session)));
    return outcomes;
  }

  #closeIfDrained(session: Session): void {
    if ((session.run?.pending ?? 0) > 0 || session.closed) return;
    session.closed = true;
    session.run?.close();
    if (this.#running === session) this.#running = undefined;
    // Between sessions every kept worker is idle and loaded (or failed to load, which
    // the next batch of this task will report again without a new try).
    for (const slot of this.#slots) if (slot.inFlight.length > 0) slot.terminate();
    this.#slots = this.#slots.filter((slot) => !slot.dead);
    session.drained();
  }

  /** Loads the task (a switch terminates every worker and wipes storage first), then runs the session's batches. */
  async #start(task: SandboxTask, session: Session, memoryMb: number): Promise<void> {
    let failed: { kind: "throw" | "oom"; message: string } | null = null;
    try {
      if (this.#task?.identity !== session.identity) {
        this.#task = undefined;
        this.#terminateAll();
        await clearOriginStorage();
        const memoryBytes = memoryMb * 1024 * 1024;
        // Compiled once here, its memories capped at the budget; every worker of the task instantiates the same Module.
        const compiled = task.wasm ? await compileWasm(task.wasm, memoryBytes) : null;
        if ("kind" in (compiled ?? {})) failed = compiled as { kind: "throw" | "oom"; message: string };
        else {
          const { module = null, limits = null } = (compiled ?? {}) as { module?: WebAssembly.Module; limits?: WasmMemoryLimits };
          const load: WorkerLoad = { code: task.code, wasm: module, wasmLimits: limits, webgpu: task.webgpu === true, memoryBytes };
          this.#task = { identity: session.identity, load, timeoutMs: task.timeoutMs };
        }
      }
    } catch (error) {
      failed = { kind: "throw", message: `the sandbox could not switch to this task: ${describeError(error)}` };
    }
    const backlog = session.backlog.splice(0);
    if (failed !== null || !this.#task) {
      const { kind, message } = failed ?? { kind: "throw", message: "the task did not load" };
      session.closed = true;
      for (const batch of backlog) batch.settle(Promise.resolve(batch.chunks.map((chunk) => failure(chunk.key, kind, message, 0))));
      session.drained();
      return;
    }
    const { load, timeoutMs } = this.#task;
    session.run = dispatch({
      slots: this.#slots,
      spawn: () => startWorkerSlot(this.#workerUrl, load, timeoutMs),
      threads: () => this.#threads,
      restFactor: () => 100 / this.#cpuPercent - 1,
      timeoutMs,
    });
    this.#running = session;
    for (const batch of backlog) batch.settle(this.#add(session, batch.chunks, batch.onProgress, batch.onCheckpoint));
  }

  #terminateAll(): void {
    for (const slot of this.#slots.splice(0)) slot.terminate();
  }
}

/** Batches with equal identities run the same code the same way: they may share workers. */
function identityOf(task: SandboxTask, memoryMb: number): string {
  return JSON.stringify([task.taskId, task.codeSha256, task.wasm ? (task.wasmSha256 ?? null) : null, task.webgpu === true, task.timeoutMs, memoryMb]);
}

async function compileWasm(bytes: Uint8Array, memoryBytes: number): Promise<{ module: WebAssembly.Module; limits: WasmMemoryLimits } | { kind: "throw" | "oom"; message: string }> {
  try {
    const capped = capWasmMemories(bytes, memoryBytes);
    return { module: await WebAssembly.compile(capped.bytes as Uint8Array<ArrayBuffer>), limits: capped.limits };
  } catch (err) {
    if (err instanceof WasmLimitError) return { kind: "oom", message: `the task's WebAssembly module: ${err.message}` };
    return { kind: "throw", message: `the task's WebAssembly module does not compile: ${describeError(err)}` };
  }
}

function checkMemoryMb(value: unknown, name: string): void {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > TASK_MEMORY_MB.max) {
    throw new RangeError(`${name} must be an integer from 1 to ${TASK_MEMORY_MB.max}, got ${String(value)}`);
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
  if (task.memoryMb !== undefined && task.memoryMb !== null) checkMemoryMb(task.memoryMb, "memoryMb");
  if (!Array.isArray(chunks)) throw new TypeError("chunks must be an array");
  const keys = new Set(chunks.map((chunk) => chunk.key));
  if (keys.size !== chunks.length || ![...keys].every((key) => typeof key === "string")) {
    throw new TypeError("every chunk needs a distinct string key");
  }
}
