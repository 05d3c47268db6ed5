import { type Remote, wrap } from "comlink";
import type { ChunkErrorKind, SandboxChunk, WorkerApi, WorkerLoad, WorkerNotice } from "../protocol.ts";

/** Startup time a fresh worker gets on top of the task's timeout (worker boot, parsing ~1 MiB of code). */
const LOAD_ALLOWANCE_MS = 2000;

export type SlotReady = { ok: true } | { ok: false; kind: ChunkErrorKind; message: string };

/** A chunk sent to a worker and not answered yet. */
export interface InFlight {
  chunk: SandboxChunk;
  sentAt: number;
  /** When the worker said it began this chunk. */
  startedAt?: number;
  deadline?: ReturnType<typeof setTimeout>;
  lastProgressAt?: number;
  /** Set when the host cancelled this chunk: the worker is terminated if it has not let go by then. */
  cancelDeadline?: ReturnType<typeof setTimeout>;
}

/** One worker thread with the task's code loaded (or loading). */
export interface WorkerSlot {
  readonly api: Remote<WorkerApi>;
  readonly ready: Promise<SlotReady>;
  /** In the order the worker runs them: the first one is running or about to. */
  readonly inFlight: InFlight[];
  onNotice: ((notice: WorkerNotice) => void) | undefined;
  dead: boolean;
  terminate(): void;
}

export function startWorkerSlot(workerUrl: string, task: WorkerLoad, timeoutMs: number): WorkerSlot {
  const worker = new Worker(workerUrl);
  const api = wrap<WorkerApi>(worker);
  let loadTimer: ReturnType<typeof setTimeout> | undefined;
  const budget = timeoutMs + LOAD_ALLOWANCE_MS;
  const ready = Promise.race([
    api.load(task).then(
      (result): SlotReady => (result.ok ? result : { ok: false, kind: "throw", message: String(result.message) }),
    ),
    new Promise<SlotReady>((resolve) => {
      loadTimer = setTimeout(
        () => resolve({ ok: false, kind: "timeout", message: `the work code did not finish loading within ${budget} ms` }),
        budget,
      );
    }),
  ]).finally(() => clearTimeout(loadTimer));

  const slot: WorkerSlot = {
    api,
    ready,
    inFlight: [],
    onNotice: undefined,
    dead: false,
    terminate() {
      slot.dead = true;
      for (const entry of slot.inFlight) {
        clearTimeout(entry.deadline);
        clearTimeout(entry.cancelDeadline);
      }
      worker.terminate();
    },
  };
  worker.addEventListener("message", (event: MessageEvent<unknown>) => {
    if (!slot.dead && isNotice(event.data)) slot.onNotice?.(event.data);
  });
  return slot;
}

function isNotice(data: unknown): data is WorkerNotice {
  if (typeof data !== "object" || data === null) return false;
  const { type, key } = data as { type?: unknown; key?: unknown };
  return (type === "cc-chunk-start" || type === "cc-chunk-progress") && typeof key === "string";
}
