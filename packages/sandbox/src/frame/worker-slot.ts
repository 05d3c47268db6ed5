import {
  CHECKPOINT_INTERVAL_MS,
  type ChunkConsole,
  type ChunkErrorKind,
  type ChunkOutcome,
  CONSOLE_FLUSH_MS,
  type FromWorker,
  PROGRESS_INTERVAL_MS,
  type SandboxChunk,
  type ToWorker,
  type WorkerLoad,
} from "../protocol.ts";

/** Startup time a fresh worker gets on top of the task's timeout (worker boot, parsing ~1 MiB of code). */
const LOAD_ALLOWANCE_MS = 2000;
/**
 * Messages a worker may send that the frame did not expect (an outcome for a chunk it is not
 * running, progress past the worker's own rate limit, an error event) before the frame stops it.
 * The bootstrap sends none of these and work code has no postMessage, so any is a bypass.
 */
const MAX_STRAY_MESSAGES = 100;

type SlotReady = { ok: true } | { ok: false; kind: ChunkErrorKind; message: string };

/** A chunk sent to a worker and not answered yet. */
export interface InFlight {
  chunk: SandboxChunk;
  sentAt: number;
  /** When it became the head of its worker's queue: its deadline runs from here. */
  startedAt?: number;
  deadline?: ReturnType<typeof setTimeout>;
  lastProgressAt?: number;
  /** Progress messages the worker sent for it: the bootstrap's rate bounds them. */
  progressMessages?: number;
  /** Console and checkpoint messages, bounded the same way. */
  consoleMessages?: number;
  checkpointMessages?: number;
  /** What the chunk wrote to its console so far (lines a long chunk sent before its outcome). */
  console?: ChunkConsole;
  /** Set when the host cancelled this chunk: the worker is terminated if it has not let go by then. */
  cancelDeadline?: ReturnType<typeof setTimeout>;
}

/** What the dispatcher hears from a slot's worker: only about the chunk at the head of its queue. */
interface SlotListener {
  outcome(outcome: ChunkOutcome, replace: boolean): void;
  progress(fraction: number, message: string | undefined): void;
  console(lines: unknown, truncated: unknown): void;
  checkpoint(json: unknown): void;
  /** The worker misbehaved (a flood, messages it cannot send honestly): stop it. */
  misbehaved(reason: string): void;
}

/** One worker thread with the task's code loaded (or loading). */
export interface WorkerSlot {
  readonly ready: Promise<SlotReady>;
  /** In the order the worker runs them: the first one is running or about to. */
  readonly inFlight: InFlight[];
  listener: SlotListener | undefined;
  dead: boolean;
  /** `restFactor`: how long the worker rests inside the chunk per ms of its CPU time (docs/architecture.md, "CPU time and the CPU share"). */
  run(chunk: SandboxChunk, timeoutMs: number, restFactor: number): void;
  cancel(key: string): void;
  terminate(): void;
}

export function startWorkerSlot(workerUrl: string, task: WorkerLoad, timeoutMs: number): WorkerSlot {
  const worker = new Worker(workerUrl);
  const send = (message: ToWorker): void => worker.postMessage(message);
  let loadTimer: ReturnType<typeof setTimeout> | undefined;
  let settleLoad!: (ready: SlotReady) => void;
  const budget = timeoutMs + LOAD_ALLOWANCE_MS;
  const ready = new Promise<SlotReady>((resolve) => {
    settleLoad = resolve;
    loadTimer = setTimeout(() => resolve({ ok: false, kind: "timeout", message: `the work code did not finish loading within ${budget} ms` }), budget);
  }).finally(() => clearTimeout(loadTimer));
  let stray = 0;

  const slot: WorkerSlot = {
    ready,
    inFlight: [],
    listener: undefined,
    dead: false,
    run: (chunk, chunkTimeoutMs, restFactor) => send({ t: "run", chunk, timeoutMs: chunkTimeoutMs, restFactor }),
    cancel: (key) => send({ t: "cancel", key }),
    terminate() {
      slot.dead = true;
      for (const entry of slot.inFlight) {
        clearTimeout(entry.deadline);
        clearTimeout(entry.cancelDeadline);
      }
      worker.terminate();
      settleLoad({ ok: false, kind: "throw", message: "the worker was stopped" });
    },
  };
  const strayMessage = (what: string): void => {
    stray += 1;
    if (stray === MAX_STRAY_MESSAGES) slot.listener?.misbehaved(`the worker sent ${MAX_STRAY_MESSAGES} messages the sandbox did not expect (last: ${what})`);
  };
  worker.addEventListener("message", (event: MessageEvent<unknown>) => {
    if (slot.dead) return;
    const message = event.data as Partial<FromWorker> | null;
    switch (message?.t) {
      case "loaded":
        settleLoad(message.ok ? { ok: true } : { ok: false, kind: "throw", message: String((message as { message?: unknown }).message) });
        return;
      case "outcome": {
        const outcome = (message as { outcome?: { key?: unknown } }).outcome;
        if (!slot.listener || slot.inFlight[0]?.chunk.key !== outcome?.key) return strayMessage("an outcome for a chunk it is not running");
        slot.listener.outcome(outcome as ChunkOutcome, (message as { replace?: unknown }).replace === true);
        return;
      }
      case "progress": {
        const { key, fraction, message: text } = message as { key?: unknown; fraction?: unknown; message?: unknown };
        const head = slot.inFlight[0];
        if (!head || head.chunk.key !== key) return strayMessage("progress for a chunk it is not running");
        // The bootstrap sends one at the start and then at most one per PROGRESS_INTERVAL_MS.
        head.progressMessages = (head.progressMessages ?? 0) + 1;
        const allowed = 2 + (performance.now() - (head.startedAt ?? head.sentAt)) / PROGRESS_INTERVAL_MS;
        if (head.progressMessages > allowed) return strayMessage("progress past its rate");
        slot.listener?.progress(Number(fraction), typeof text === "string" ? text : undefined);
        return;
      }
      case "console": {
        const { key, lines, truncated } = message as { key?: unknown; lines?: unknown; truncated?: unknown };
        const head = slot.inFlight[0];
        if (!head || head.chunk.key !== key) return strayMessage("console lines for a chunk it is not running");
        // The bootstrap sends lines at most once per CONSOLE_FLUSH_MS, the rest with the outcome.
        head.consoleMessages = (head.consoleMessages ?? 0) + 1;
        if (head.consoleMessages > 2 + (performance.now() - (head.startedAt ?? head.sentAt)) / CONSOLE_FLUSH_MS) return strayMessage("console lines past their rate");
        slot.listener?.console(lines, truncated);
        return;
      }
      case "checkpoint": {
        const { key, json } = message as { key?: unknown; json?: unknown };
        const head = slot.inFlight[0];
        if (!head || head.chunk.key !== key) return strayMessage("a checkpoint for a chunk it is not running");
        head.checkpointMessages = (head.checkpointMessages ?? 0) + 1;
        if (head.checkpointMessages > 2 + (performance.now() - (head.startedAt ?? head.sentAt)) / CHECKPOINT_INTERVAL_MS) return strayMessage("checkpoints past their rate");
        slot.listener?.checkpoint(json);
        return;
      }
      default:
        strayMessage("a message of no known type");
    }
  });
  // Errors are kept in the worker by its bootstrap; one reaching here is stray too, and is not
  // reported further (it would be one event per error in the frame's thread).
  worker.addEventListener("error", (event) => {
    event.preventDefault();
    if (!slot.dead) strayMessage("an error event");
  });
  worker.addEventListener("messageerror", () => !slot.dead && strayMessage("a message that could not be read"));
  send({ t: "load", load: task });
  return slot;
}
