import { jsonTextProblem, jsonTextTooDeep } from "@crowdcompute/contract/json-limits";
import { MAX_CHECKPOINT_CHARS, MAX_JSON_DEPTH, MAX_PROGRESS_MESSAGE_CHARS, MAX_RESULT_BYTES } from "@crowdcompute/contract/limits";
import { chunkErrorKinds } from "@crowdcompute/contract/statuses";
import { appendConsole, type ChunkCheckpoint, type ChunkOutcome, type ChunkProgress, exceedsUtf8Bytes, failure, PROGRESS_INTERVAL_MS, type SandboxChunk, truncateUtf8 } from "../protocol.ts";
import type { InFlight, WorkerSlot } from "./worker-slot.ts";

/**
 * Chunks sent to a worker ahead of its answers, so a worker never waits for the frame.
 * 6400 trivial chunks on 2 threads (2-core machine, Chromium 156) cost 0.049 ms each at
 * depth 1, 0.030 at 2, 0.029 at 4, 0.025 at 8; deeper only makes a batch's tail uneven.
 * A throttled volunteer's workers take one chunk at a time: each rests after it.
 */
const PIPELINE_DEPTH = 4;
/** Lets a cooperative chunk see `ctx.signal` abort (and clean up) before its worker is terminated. */
const TERMINATE_GRACE_MS = 50;
/** A cancelled chunk whose worker has not answered within this is stopped with its worker. */
const CANCEL_GRACE_MS = 500;

type OnProgress = ((progress: ChunkProgress) => unknown) | undefined;
type OnCheckpoint = ((checkpoint: ChunkCheckpoint) => unknown) | undefined;

export interface DispatchOptions {
  /** Updated in place as slots are added, replaced and retired. */
  slots: WorkerSlot[];
  /** A fresh worker with the task's code. */
  spawn(): WorkerSlot;
  /** How many workers the volunteer lends now (read at each chunk: a change applies at once). */
  threads(): number;
  /**
   * How long a worker rests after each chunk, as a multiple of the chunk's time: a volunteer
   * lending cpuPercent of each thread rests 100 / cpuPercent − 1 times what it computed.
   */
  restFactor(): number;
  timeoutMs: number;
}

export interface Dispatch {
  /**
   * Runs these chunks too, behind those already waiting (a block added before the one
   * running ends keeps every worker busy across the boundary); one outcome per chunk, in
   * input order. Keys must differ from those of chunks not yet ended.
   */
  add(chunks: SandboxChunk[], onProgress?: OnProgress, onCheckpoint?: OnCheckpoint): Promise<ChunkOutcome[]>;
  /**
   * Ends these chunks now as `cancelled`: waiting ones are dropped, running ones see
   * `ctx.signal` abort and lose their worker if they have not returned within 500 ms.
   */
  cancel(keys: Iterable<string>): void;
  /** Chunks added and not yet ended. */
  readonly pending: number;
  /** Stops listening to the workers (call once nothing is pending). */
  close(): void;
}

interface Batch {
  chunks: SandboxChunk[];
  outcomes: Map<string, ChunkOutcome>;
  resolve(outcomes: ChunkOutcome[]): void;
  onProgress: OnProgress;
  onCheckpoint: OnCheckpoint;
}

/**
 * Runs the chunks of one task on its workers, keeping every worker's queue full, for as long
 * as batches keep coming. A chunk that outlives its timeout costs its worker (terminated and
 * replaced); the chunks queued behind it are sent again elsewhere.
 */
export function dispatch({ slots, spawn, threads, restFactor, timeoutMs }: DispatchOptions): Dispatch {
  const waiting = new ChunkQueue();
  /** The batch of each chunk not yet ended: a chunk has ended once it is not here. */
  const batchOf = new Map<string, Batch>();
  const restTimers = new Map<WorkerSlot, ReturnType<typeof setTimeout>>();
  const restUntil = new Map<WorkerSlot, number>();
  let closed = false;

  const record = (outcome: ChunkOutcome): void => {
    const batch = batchOf.get(outcome.key);
    if (!batch) return;
    batchOf.delete(outcome.key);
    batch.outcomes.set(outcome.key, outcome);
    if (batch.outcomes.size === batch.chunks.length) batch.resolve(batch.chunks.map((chunk) => batch.outcomes.get(chunk.key) as ChunkOutcome));
  };

  const listen = (slot: WorkerSlot): void => {
    slot.listener = {
      outcome: (outcome, replace) => onOutcome(slot, outcome, replace),
      progress: (fraction, message) => onProgress(slot, fraction, message),
      console: (lines, truncated) => onConsole(slot, lines, truncated),
      checkpoint: (json) => onCheckpoint(slot, json),
      misbehaved: (reason) => onMisbehaved(slot, reason),
    };
  };

  const attach = (slot: WorkerSlot): void => {
    listen(slot);
    void slot.ready.then((ready) => {
      if (slot.dead || closed) return;
      if (ready.ok) return fill(slot);
      // Every worker loads the same code, so none of the waiting chunks can run.
      if (ready.kind === "timeout") slot.terminate();
      for (const chunk of waiting.drain()) record(failure(chunk.key, ready.kind, ready.message, 0));
    });
  };

  /** Starts workers up to the threads lent, never more than there are chunks to run. */
  const grow = (): void => {
    const wanted = Math.min(threads(), batchOf.size);
    while (slots.length < wanted) {
      const slot = spawn();
      slots.push(slot);
      attach(slot);
    }
  };

  const fill = (slot: WorkerSlot): void => {
    if (slot.dead || closed) return;
    // The volunteer lent fewer threads: an idle surplus worker goes.
    if (slots.indexOf(slot) >= threads()) {
      if (slot.inFlight.length === 0) retire(slot);
      return;
    }
    const resting = (restUntil.get(slot) ?? 0) - performance.now();
    if (resting > 0) {
      if (!restTimers.has(slot))
        restTimers.set(
          slot,
          setTimeout(() => {
            restTimers.delete(slot);
            fill(slot);
          }, resting),
        );
      return;
    }
    // No worker takes more than its share, so a small batch still spreads over all threads.
    const unfinished = waiting.length + slots.reduce((sum, other) => sum + other.inFlight.length, 0);
    const depth = restFactor() > 0 ? 1 : PIPELINE_DEPTH;
    const share = Math.min(depth, Math.ceil(unfinished / Math.min(slots.length, threads())));
    while (slot.inFlight.length < share && waiting.length > 0) {
      const entry: InFlight = { chunk: waiting.shift() as SandboxChunk, sentAt: performance.now() };
      slot.inFlight.push(entry);
      if (slot.inFlight.length === 1) armDeadline(slot, entry);
      slot.run(entry.chunk, timeoutMs, restFactor());
    }
  };

  const retire = (slot: WorkerSlot): void => {
    slot.terminate();
    slots.splice(slots.indexOf(slot), 1);
  };

  // A chunk's clock starts when it becomes the head of its worker's queue: the worker starts
  // it as soon as it has posted the outcome before it (worker.ts), with no message between.
  const armDeadline = (slot: WorkerSlot, entry: InFlight): void => {
    clearTimeout(entry.deadline);
    entry.startedAt = performance.now();
    entry.deadline = setTimeout(() => onTimeout(slot, entry), timeoutMs + TERMINATE_GRACE_MS);
  };

  const onProgress = (slot: WorkerSlot, rawFraction: number, message: string | undefined): void => {
    const head = slot.inFlight[0];
    const listener = head && batchOf.get(head.chunk.key)?.onProgress;
    const now = performance.now();
    if (!head || !listener || now - (head.lastProgressAt ?? -Infinity) < PROGRESS_INTERVAL_MS) return;
    head.lastProgressAt = now;
    const fraction = Math.min(1, Math.max(0, Number.isFinite(rawFraction) ? rawFraction : 0));
    const progress: ChunkProgress = { key: head.chunk.key, fraction };
    if (typeof message === "string") progress.message = truncateUtf8(message, MAX_PROGRESS_MESSAGE_CHARS);
    Promise.resolve(listener(progress)).catch(() => {}); // a host that stopped listening is fine
  };

  /** Lines a long chunk sent before its outcome: kept with its in-flight entry, bounded. */
  const onConsole = (slot: WorkerSlot, lines: unknown, truncated: unknown): void => {
    const head = slot.inFlight[0];
    if (head) head.console = appendConsole(head.console, lines, truncated);
  };

  /** A checkpoint goes on to the host only as JSON text within the bounds the server takes. */
  const onCheckpoint = (slot: WorkerSlot, json: unknown): void => {
    const head = slot.inFlight[0];
    const listener = head && batchOf.get(head.chunk.key)?.onCheckpoint;
    if (!head || !listener || typeof json !== "string" || json.length > MAX_CHECKPOINT_CHARS || jsonTextTooDeep(json) >= 0) return;
    Promise.resolve(listener({ key: head.chunk.key, json })).catch(() => {});
  };

  /** The outcome of the slot's head chunk (worker-slot.ts checked the key). */
  const onOutcome = (slot: WorkerSlot, outcome: ChunkOutcome, replace: boolean): void => {
    if (slot.dead) return;
    const entry = slot.inFlight[0];
    if (!entry) return;
    clearTimeout(entry.deadline);
    clearTimeout(entry.cancelDeadline);
    const checked = checkOutcome(entry, outcome);
    // The worker went over its memory budget or left work running: it runs nothing more.
    if (!replace) slot.inFlight.shift();
    const next = replace ? abandon(slot, entry) : slot;
    const head = next.inFlight[0];
    if (head && head.deadline === undefined) armDeadline(next, head);
    const factor = restFactor();
    if (factor > 0) {
      // What the chunk owes for its CPU time less the time it was idle (waiting, or resting
      // inside itself: docs/architecture.md, "CPU time and the CPU share").
      const elapsed = performance.now() - (entry.startedAt ?? entry.sentAt);
      const owed = checked.cpuMs * factor - (elapsed - checked.cpuMs);
      if (owed > 0) restUntil.set(next, performance.now() + owed);
    }
    record(checked);
    if (!replace) fill(next);
  };

  /** A worker that floods the frame or sends what its bootstrap never would: its chunk fails, the worker goes. */
  const onMisbehaved = (slot: WorkerSlot, reason: string): void => {
    if (slot.dead) return;
    const head = slot.inFlight[0];
    if (!head) return void slot.terminate();
    abandon(slot, head);
    record(withConsole(failure(head.chunk.key, "throw", reason, performance.now() - (head.startedAt ?? head.sentAt)), head));
  };

  const onTimeout = (slot: WorkerSlot, entry: InFlight): void => {
    if (slot.dead) return;
    const message = `the chunk ran longer than its timeout of ${timeoutMs} ms`;
    const fresh = abandon(slot, entry);
    // It spun its whole timeout: its thread rests as long as after any chunk that long.
    if (restFactor() > 0) restUntil.set(fresh, performance.now() + timeoutMs * restFactor());
    record(withConsole(failure(entry.chunk.key, "timeout", message, timeoutMs), entry));
  };

  /** Replaces the slot's worker; the chunks queued behind `entry` (and not already ended) go to others. */
  const abandon = (slot: WorkerSlot, entry: InFlight): WorkerSlot => {
    const requeue = slot.inFlight.filter((other) => other !== entry && batchOf.has(other.chunk.key)).map((other) => other.chunk);
    slot.terminate();
    const fresh = spawn();
    slots[slots.indexOf(slot)] = fresh;
    restUntil.set(fresh, restUntil.get(slot) ?? 0);
    restUntil.delete(slot);
    waiting.unshift(requeue);
    attach(fresh);
    return fresh;
  };

  const cancel = (keys: Iterable<string>): void => {
    const wanted = new Set(keys);
    waiting.remove(wanted);
    for (const slot of slots.slice()) {
      for (const entry of slot.inFlight) {
        if (!wanted.has(entry.chunk.key) || !batchOf.has(entry.chunk.key)) continue;
        slot.cancel(entry.chunk.key);
        entry.cancelDeadline = setTimeout(() => {
          if (!slot.dead && slot.inFlight.includes(entry)) void abandon(slot, entry);
        }, CANCEL_GRACE_MS);
      }
    }
    for (const key of wanted) if (batchOf.has(key)) record(failure(key, "cancelled", "the chunk was cancelled", 0));
    // Queues emptied by the cancel take what is left.
    for (const slot of slots) if (!slot.dead) void slot.ready.then((ready) => ready.ok && fill(slot));
  };

  // Workers kept from the task's previous session (worker-pool.ts) answer to this one now.
  for (const slot of slots) listen(slot);

  return {
    add(chunks, onProgress, onCheckpoint) {
      if (chunks.length === 0) return Promise.resolve([]);
      return new Promise<ChunkOutcome[]>((resolve) => {
        const batch: Batch = { chunks, outcomes: new Map(), resolve, onProgress, onCheckpoint };
        for (const chunk of chunks) batchOf.set(chunk.key, batch);
        waiting.push(chunks);
        grow();
        for (const slot of slots) if (!slot.dead) void slot.ready.then((ready) => ready.ok && fill(slot));
      });
    },
    cancel,
    get pending() {
      return batchOf.size;
    },
    close() {
      closed = true;
      for (const timer of restTimers.values()) clearTimeout(timer);
      for (const slot of slots) slot.listener = undefined;
    },
  };
}

/** A FIFO of chunks: `Array#shift` moves the whole array, and a session may hold 50,000 waiting chunks. */
class ChunkQueue {
  #items: SandboxChunk[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(chunks: readonly SandboxChunk[]): void {
    for (const chunk of chunks) this.#items.push(chunk);
  }

  shift(): SandboxChunk | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const chunk = this.#items[this.#head++];
    // Drop the taken part once it is most of the array.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return chunk;
  }

  /** Puts chunks back at the front (they were queued on a worker that is gone). */
  unshift(chunks: readonly SandboxChunk[]): void {
    this.#items = [...chunks, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }

  remove(keys: ReadonlySet<string>): void {
    this.#items = this.#items.slice(this.#head).filter((chunk) => !keys.has(chunk.key));
    this.#head = 0;
  }

  drain(): SandboxChunk[] {
    const all = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return all;
  }
}

/** A failure the frame decided (a timeout, a misbehaving worker) keeps the lines the chunk sent before. */
function withConsole(outcome: ChunkOutcome, entry: InFlight): ChunkOutcome {
  return entry.console ? { ...outcome, console: entry.console } : outcome;
}

/** Outcomes come from a worker that work code shares, so each one is checked, never trusted. */
function checkOutcome(entry: InFlight, raw: unknown): ChunkOutcome {
  const checked = checkResult(entry, raw);
  const sent = (raw as { console?: { lines?: unknown; truncated?: unknown } } | null)?.console;
  const logged = sent === undefined ? entry.console : appendConsole(entry.console, sent?.lines, sent?.truncated);
  return logged ? { ...checked, console: logged } : checked;
}

function checkResult(entry: InFlight, raw: unknown): ChunkOutcome {
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
    // Checked as text, never parsed: the page carries it on as it is, into the report it posts.
    const problem = jsonTextProblem(json, MAX_JSON_DEPTH);
    if (problem?.kind === "depth") return failure(key, "invalid-result", `the result nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`, cpuMs);
    if (problem) return failure(key, "invalid-result", "the result is not valid JSON", cpuMs);
    return { key, ok: true, resultJson: json, cpuMs };
  }
  // Not "cancelled": only the host decides that; a worker claiming it is believed as a throw.
  const kind = chunkErrorKinds.find((known) => known === outcome.error?.kind) ?? "throw";
  const message = typeof outcome.error?.message === "string" ? outcome.error.message : "the work failed without a message";
  return failure(key, kind, message, cpuMs);
}
