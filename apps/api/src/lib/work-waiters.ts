// Lease requests that wait for work (`waitMs`): held in memory, no database connection, and
// woken by `notifyWorkReady` from any API process (docs/architecture.md, "Dispatch", waiting
// volunteers). A wake-up is served a few requests at a time, not as a herd of lease statements.
import { candidateTasksChanged, type Db, listenWorkReady } from "@crowdcompute/db";

/** How one wait ended: with work (the attempt's answer), or with none and why. */
export type WaitEnd<T> = { answer: T } | { answer: null; why: "timeout" | "replaced" | "closed" | "gone" | "refused" };

/** One waiting request: it tries to lease when woken; a truthy answer ends its wait. */
export interface WaitRequest<T> {
  volunteerId: string;
  /** The network source of an anonymous volunteer (null for an account's): waiting requests are capped per source. */
  source: string | null;
  /** Tasks it never runs: a wake-up for only those tasks passes it by. */
  excluded: ReadonlySet<string>;
  ms: number;
  /** Aborts when the client goes: the wait ends at once. */
  signal: AbortSignal;
  /** One lease attempt, given how many others wait here; null when it got no work. */
  attempt(waiting: number): Promise<T | null>;
}

export interface WorkWaitersOptions {
  /** Waiting requests of one network source's anonymous volunteers (LEASE_WAITING_PER_SOURCE). */
  perSource: number;
  /** Waiting requests in this process in all (LEASE_WAITING_MAX). */
  total: number;
  /** Lease attempts a wake-up runs at once (the pool has ~10 connections; the rest of the API keeps some). */
  concurrency?: number;
  /** Even without a notification, waiters try again this often (a lost NOTIFY, a dropped listening connection). */
  safetyMs?: number;
  /** Called every second while requests wait: expired leases are swept by lease requests, and waiters send none. */
  tick?: () => void;
}

type Entry = WaitRequest<unknown> & { done(end: WaitEnd<unknown>): void };

export interface WorkWaiters {
  /** Holds `request` until an attempt gets work, `ms` pass, a newer request of its volunteer comes, the client goes, or `close()`. */
  wait<T>(request: WaitRequest<T>): Promise<WaitEnd<T>>;
  /** Work appeared for these tasks ("*": any): waiting requests try to lease, a few at a time. */
  wake(taskIds: readonly string[]): void;
  /** How many requests wait here now. */
  readonly size: number;
  /** Answers every waiting request at once (no work) and stops listening. */
  close(): Promise<void>;
}

/**
 * Waiting lease requests of one process. A wake-up serves them oldest first, `concurrency`
 * attempts at a time, and stops once `concurrency` attempts in a row found nothing (the work
 * is gone; the rest keep waiting, and the next wake-up or the safety re-check tries again).
 */
export function createWorkWaiters(options: WorkWaitersOptions): WorkWaiters {
  const concurrency = options.concurrency ?? 8;
  const safetyMs = options.safetyMs ?? 5_000;
  // Insertion order is the order served: a request that tried and got nothing goes to the back.
  const entries = new Set<Entry>();
  const byVolunteer = new Map<string, Entry>();
  const bySource = new Map<string, number>();
  let closed = false;
  let draining = false;
  let again: Set<string> | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let lastDrainAt = 0;

  const remove = (entry: Entry) => {
    if (!entries.delete(entry)) return false;
    if (byVolunteer.get(entry.volunteerId) === entry) byVolunteer.delete(entry.volunteerId);
    if (entry.source !== null) {
      const n = (bySource.get(entry.source) ?? 1) - 1;
      if (n <= 0) bySource.delete(entry.source);
      else bySource.set(entry.source, n);
    }
    if (entries.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
    return true;
  };
  const end = (entry: Entry, how: WaitEnd<unknown>) => {
    remove(entry);
    entry.done(how);
  };

  const wants = (entry: Entry, ids: ReadonlySet<string>) => ids.has("*") || [...ids].some((id) => !entry.excluded.has(id));

  /** Serves the waiting requests for `ids`, `concurrency` at a time, until a run of empty attempts. */
  const drain = async (ids: Set<string>) => {
    draining = true;
    lastDrainAt = Date.now();
    let served = 0;
    let cutShort = false;
    try {
      let emptyInARow = 0;
      // One drain at a time (`draining`; a wake-up meanwhile goes in `again`): none of these is mid-attempt.
      const queue = [...entries].filter((entry) => wants(entry, ids));
      let next = 0;
      const worker = async () => {
        while (!closed && emptyInARow < concurrency && next < queue.length) {
          const entry = queue[next++]!;
          if (!entries.has(entry)) continue;
          try {
            // The others woken with it: a new task gives each of them a share (the count stays as the drain began).
            const answer = await entry.attempt(queue.length - 1);
            if (answer !== null) {
              emptyInARow = 0;
              served++;
              if (entries.has(entry)) end(entry, { answer });
            } else {
              emptyInARow++;
              // Tried and found nothing: to the back of the order.
              if (entries.delete(entry)) entries.add(entry);
            }
          } catch (error) {
            if (remove(entry)) entry.done({ answer: null, why: "gone" });
            console.warn(`a waiting lease request failed: ${(error as Error).message}`);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
      cutShort = next < queue.length;
    } finally {
      draining = false;
      // Stopped on a run of empty attempts after serving some: lessees racing for a task's last
      // open stripes find nothing now and then though chunks are left, so another round goes;
      // a round that serves none ends it (the 10k bench's last half came 5 s apart before).
      if (cutShort && served > 0 && !closed) {
        again ??= new Set();
        for (const id of ids) again.add(id);
      }
      if (again && !closed) {
        const ids = again;
        again = null;
        void drain(ids);
      }
    }
  };

  const wake = (taskIds: readonly string[]) => {
    if (closed || entries.size === 0) return;
    const ids = new Set(taskIds.length === 0 ? ["*"] : taskIds);
    if (draining) {
      again ??= new Set();
      for (const id of ids) again.add(id);
      return;
    }
    void drain(ids);
  };

  const startTimer = () => {
    if (timer) return;
    timer = setInterval(() => {
      options.tick?.();
      if (Date.now() - lastDrainAt >= safetyMs) wake(["*"]);
    }, 1_000);
    timer.unref?.();
  };

  return {
    get size() {
      return entries.size;
    },
    wake,
    wait<T>(request: WaitRequest<T>): Promise<WaitEnd<T>> {
      if (closed || request.signal.aborted) return Promise.resolve({ answer: null, why: closed ? "closed" : "gone" });
      // One waiting request per volunteer: the newer one takes the place (the older one's client
      // has usually gone, a reload or a retry), and the older is answered at once.
      const older = byVolunteer.get(request.volunteerId);
      if (older) end(older, { answer: null, why: "replaced" });
      if (entries.size >= options.total) return Promise.resolve({ answer: null, why: "refused" });
      if (request.source !== null && (bySource.get(request.source) ?? 0) >= options.perSource) return Promise.resolve({ answer: null, why: "refused" });
      return new Promise<WaitEnd<T>>((resolve) => {
        const onAbort = () => end(entry, { answer: null, why: "gone" });
        // Up to 15 % sooner, at random: volunteers that began waiting together (a restart, a
        // task's end) do not all time out and ask again in the same moment.
        const timeout = setTimeout(() => end(entry, { answer: null, why: "timeout" }), request.ms * (0.85 + 0.15 * Math.random()));
        const entry: Entry = {
          ...request,
          done: (how) => {
            clearTimeout(timeout);
            request.signal.removeEventListener("abort", onAbort);
            resolve(how as WaitEnd<T>);
          },
        };
        request.signal.addEventListener("abort", onAbort, { once: true });
        entries.add(entry);
        byVolunteer.set(request.volunteerId, entry);
        if (request.source !== null) bySource.set(request.source, (bySource.get(request.source) ?? 0) + 1);
        startTimer();
      });
    },
    async close() {
      closed = true;
      for (const entry of [...entries]) end(entry, { answer: null, why: "closed" });
    },
  };
}

/** `createWorkWaiters` woken by `notifyWorkReady` from any process on `db` (LISTEN); null where the client cannot LISTEN. */
export async function listeningWorkWaiters(db: Db, options: WorkWaitersOptions): Promise<WorkWaiters | null> {
  const waiters = createWorkWaiters(options);
  let stop: () => Promise<void>;
  try {
    stop = await listenWorkReady(db, (taskIds) => {
      // Tasks another process started are not in this process's cached candidate lists yet.
      candidateTasksChanged(db);
      waiters.wake(taskIds);
    });
  } catch {
    return null;
  }
  return {
    get size() {
      return waiters.size;
    },
    wait: (request) => waiters.wait(request),
    wake: (taskIds) => waiters.wake(taskIds),
    async close() {
      await waiters.close();
      await stop().catch(() => {});
    },
  };
}
