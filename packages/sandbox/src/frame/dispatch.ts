import {
  type ChunkErrorKind,
  type ChunkOutcome,
  type ChunkProgress,
  type SandboxChunk,
  type WorkerNotice,
  MAX_RESULT_BYTES,
  PROGRESS_INTERVAL_MS,
  exceedsUtf8Bytes,
  failure,
  truncateUtf8,
} from "../protocol.ts";
import type { InFlight, WorkerSlot } from "./worker-slot.ts";

/**
 * Chunks sent to a worker ahead of its answers, so a worker never waits for the frame.
 * 6400 trivial chunks on 2 threads (2-core machine, Chromium 156) cost 0.049 ms each at
 * depth 1, 0.030 at 2, 0.029 at 4, 0.025 at 8; deeper only makes a batch's tail uneven.
 */
const PIPELINE_DEPTH = 4;
/** Lets a cooperative chunk see `ctx.signal` abort (and clean up) before its worker is terminated. */
const TERMINATE_GRACE_MS = 50;
/** A cancelled chunk whose worker has not answered within this is stopped with its worker. */
const CANCEL_GRACE_MS = 500;

// Not "cancelled": only the host decides that; a worker claiming it is believed as a throw.
const errorKinds: readonly ChunkErrorKind[] = ["throw", "timeout", "oom", "invalid-result"];

export interface DispatchOptions {
  /** Updated in place as slots are replaced. */
  slots: WorkerSlot[];
  /** Terminates `slot` and puts a fresh one (same code) in its place; returns the new one. */
  replace(slot: WorkerSlot): WorkerSlot;
  chunks: SandboxChunk[];
  timeoutMs: number;
  onProgress?: ((progress: ChunkProgress) => unknown) | undefined;
}

export interface Dispatch {
  /** One outcome per chunk, in input order. */
  outcomes: Promise<ChunkOutcome[]>;
  /**
   * Ends these chunks now as `cancelled`: waiting ones are dropped, running ones see
   * `ctx.signal` abort and lose their worker if they have not returned within 500 ms.
   */
  cancel(keys: Iterable<string>): void;
}

/**
 * Runs `chunks` on the slots, keeping every worker's queue full, and resolves with one
 * outcome per chunk in input order. A chunk that outlives its timeout costs its worker
 * (terminated and replaced); the chunks queued behind it are sent again elsewhere.
 */
export function dispatch({ slots, replace, chunks, timeoutMs, onProgress }: DispatchOptions): Dispatch {
  const waiting = chunks.slice();
  const outcomes = new Map<string, ChunkOutcome>();
  let cancel: (keys: Iterable<string>) => void = () => {};

  const done = new Promise<ChunkOutcome[]>((resolve) => {
    const record = (outcome: ChunkOutcome): void => {
      if (outcomes.has(outcome.key)) return;
      outcomes.set(outcome.key, outcome);
      if (outcomes.size === chunks.length) {
        for (const slot of slots) slot.onNotice = undefined;
        resolve(chunks.map((chunk) => outcomes.get(chunk.key) as ChunkOutcome));
      }
    };

    const attach = (slot: WorkerSlot): void => {
      slot.onNotice = (notice) => onNotice(slot, notice);
      void slot.ready.then((ready) => {
        if (slot.dead) return;
        if (ready.ok) return fill(slot);
        // Every worker loads the same code, so none of the waiting chunks can run.
        if (ready.kind === "timeout") slot.terminate();
        for (const chunk of waiting.splice(0)) record(failure(chunk.key, ready.kind, ready.message, 0));
      });
    };

    const fill = (slot: WorkerSlot): void => {
      // No worker takes more than its share, so a small batch still spreads over all threads.
      const unfinished = waiting.length + slots.reduce((sum, other) => sum + other.inFlight.length, 0);
      const share = Math.min(PIPELINE_DEPTH, Math.ceil(unfinished / slots.length));
      while (slot.inFlight.length < share && waiting.length > 0) {
        const entry: InFlight = { chunk: waiting.shift() as SandboxChunk, sentAt: performance.now() };
        slot.inFlight.push(entry);
        if (slot.inFlight.length === 1) armDeadline(slot, entry);
        slot.api.run(entry.chunk, timeoutMs).then(
          (outcome) => onOutcome(slot, entry, outcome),
          (err: unknown) => onOutcome(slot, entry, failure(entry.chunk.key, "throw", `the worker failed: ${String(err)}`, 0)),
        );
      }
    };

    // The head of a queue gets a deadline as soon as it is head, so a worker wedged
    // before the chunk starts (say, by a timer the previous chunk left behind) is still
    // caught; its start notice then restarts the clock from its real start.
    const armDeadline = (slot: WorkerSlot, entry: InFlight): void => {
      clearTimeout(entry.deadline);
      entry.deadline = setTimeout(() => onTimeout(slot, entry), timeoutMs + TERMINATE_GRACE_MS);
    };

    const onNotice = (slot: WorkerSlot, notice: WorkerNotice): void => {
      const head = slot.inFlight[0];
      if (!head || head.chunk.key !== notice.key) return; // forged, or stale
      if (notice.type === "cc-chunk-start") {
        if (head.startedAt !== undefined) return;
        head.startedAt = performance.now();
        armDeadline(slot, head);
        return;
      }
      const now = performance.now();
      if (!onProgress || now - (head.lastProgressAt ?? -Infinity) < PROGRESS_INTERVAL_MS) return;
      head.lastProgressAt = now;
      const fraction = Math.min(1, Math.max(0, Number.isFinite(notice.fraction) ? notice.fraction : 0));
      const progress: ChunkProgress = { key: head.chunk.key, fraction };
      if (typeof notice.message === "string") progress.message = truncateUtf8(notice.message, 256);
      Promise.resolve(onProgress(progress)).catch(() => {}); // a host that stopped listening is fine
    };

    const onOutcome = (slot: WorkerSlot, entry: InFlight, outcome: unknown): void => {
      if (slot.dead) return;
      const at = slot.inFlight.indexOf(entry);
      if (at === -1) return;
      slot.inFlight.splice(at, 1);
      clearTimeout(entry.deadline);
      clearTimeout(entry.cancelDeadline);
      const head = slot.inFlight[0];
      if (head && head.deadline === undefined) armDeadline(slot, head);
      record(checkOutcome(entry, outcome));
      fill(slot);
    };

    const onTimeout = (slot: WorkerSlot, entry: InFlight): void => {
      if (slot.dead) return;
      const message = `the chunk ran longer than its timeout of ${timeoutMs} ms`;
      abandon(slot, entry);
      record(failure(entry.chunk.key, "timeout", message, timeoutMs));
    };

    /** Replaces the slot's worker; the chunks queued behind `entry` (and not already ended) go to others. */
    const abandon = (slot: WorkerSlot, entry: InFlight): void => {
      const requeue = slot.inFlight.filter((other) => other !== entry && !outcomes.has(other.chunk.key)).map((other) => other.chunk);
      attach(replaceSlot(slot));
      waiting.unshift(...requeue);
    };

    cancel = (keys) => {
      const wanted = new Set(keys);
      for (let i = waiting.length - 1; i >= 0; i--) {
        const chunk = waiting[i] as SandboxChunk;
        if (wanted.has(chunk.key)) waiting.splice(i, 1);
      }
      for (const slot of slots.slice()) {
        for (const entry of slot.inFlight) {
          if (!wanted.has(entry.chunk.key) || outcomes.has(entry.chunk.key)) continue;
          slot.api.cancel(entry.chunk.key).catch(() => {});
          entry.cancelDeadline = setTimeout(() => {
            if (!slot.dead && slot.inFlight.includes(entry)) abandon(slot, entry);
          }, CANCEL_GRACE_MS);
        }
      }
      for (const chunk of chunks) {
        if (wanted.has(chunk.key)) record(failure(chunk.key, "cancelled", "the chunk was cancelled", 0));
      }
      // Queues emptied by the cancel take what is left of the batch.
      for (const slot of slots) if (!slot.dead) void slot.ready.then((ready) => ready.ok && !slot.dead && fill(slot));
    };

    const replaceSlot = (slot: WorkerSlot): WorkerSlot => {
      const fresh = replace(slot);
      slots[slots.indexOf(slot)] = fresh;
      return fresh;
    };

    if (chunks.length === 0) return resolve([]);
    for (const slot of slots) attach(slot);
  });
  return { outcomes: done, cancel: (keys) => cancel(keys) };
}

/** Outcomes come from a worker that work code shares, so each one is checked, never trusted. */
function checkOutcome(entry: InFlight, raw: unknown): ChunkOutcome {
  const key = entry.chunk.key;
  const elapsed = performance.now() - (entry.startedAt ?? entry.sentAt);
  const claimed = (raw as { cpuMs?: unknown } | null)?.cpuMs;
  const cpuMs = typeof claimed === "number" && claimed >= 0 ? Math.min(claimed, elapsed) : elapsed;
  const outcome = (raw ?? {}) as Partial<{ ok: boolean; resultJson: unknown; error: { kind?: unknown; message?: unknown } }>;
  if (outcome.ok === true) {
    const json = outcome.resultJson;
    if (typeof json !== "string" || exceedsUtf8Bytes(json, MAX_RESULT_BYTES)) {
      return failure(key, "invalid-result", `the result is not a JSON string of at most ${MAX_RESULT_BYTES} bytes`, cpuMs);
    }
    try {
      JSON.parse(json);
    } catch {
      return failure(key, "invalid-result", "the result is not valid JSON", cpuMs);
    }
    return { key, ok: true, resultJson: json, cpuMs };
  }
  const kind = errorKinds.find((known) => known === outcome.error?.kind) ?? "throw";
  const message = typeof outcome.error?.message === "string" ? outcome.error.message : "the work failed without a message";
  return failure(key, kind, message, cpuMs);
}
