// Lease requests that wait for work (`waitMs`): held in memory, no database connection, and
// woken by `notifyWorkReady` from any API process (docs/architecture.md, "Dispatch", waiting
// volunteers). A wake-up is served a few requests at a time, not as a herd of lease statements.
import { candidateTasksChanged, type Db, listenWorkReady } from "@crowdcompute/db";

/** How one wait ended: with work (the attempt's answer), or with none and why. */
export type WaitEnd<T> = { answer: T } | { answer: null; why: "timeout" | "replaced" | "closed" | "gone" | "refused" | "failed" };

/**
 * One waiting request: it tries to lease when woken; a truthy answer ends its wait. Held as
 * it is, with no closure, promise or timer of its own: ten thousand of them wait in one
 * process (docs/architecture.md, "Dispatch", waiting volunteers).
 */
export interface WaitRequest<T> {
  readonly volunteerId: string;
  /** The network source of an anonymous volunteer (null for an account's): waiting requests are capped per source. */
  readonly source: string | null;
  /** Tasks it never runs: a wake-up for only those tasks passes it by. */
  readonly excluded: ReadonlySet<string>;
  readonly ms: number;
  /** One lease attempt, given how many others wait here; null when it got no work. */
  attempt(waiting: number): Promise<T | null>;
  /**
   * The lease of a request held before it leased (`holdArriving`): an answer ends its wait (work,
   * or a bound that holds it back), null leaves it waiting; a throw ends it ("failed").
   */
  first(): Promise<T | null>;
  /** How its wait ended: called once, at once when it is not held at all. */
  end(how: WaitEnd<T>): void;
  /**
   * An attempt got work after the wait had ended (its client went, a newer request took its
   * place, the waiters closed while the attempt ran): nobody will receive `answer`.
   */
  unclaimed(answer: T): void;
}

export interface WorkWaitersOptions {
  /** Waiting requests of one network source's anonymous volunteers (LEASE_WAITING_PER_SOURCE). */
  perSource: number;
  /** Waiting requests in this process in all (LEASE_WAITING_MAX). */
  total: number;
  /**
   * Lease attempts a wake-up runs at once. More than the pool's ~10 connections: the extra
   * statements queue on them and go out together, one write for several (docs/architecture.md,
   * "Dispatch", waiting volunteers: 10,000 handed out in 5.4 s at 8, 4.1 s at 32).
   */
  concurrency?: number;
  /** Even without a notification, waiters try again this often (a lost NOTIFY, a dropped listening connection). */
  safetyMs?: number;
  /** Called every second while requests wait: expired leases are swept by lease requests, and waiters send none. */
  tick?: () => void;
  /**
   * Lease requests that lease as they arrive, at once (LEASE_ARRIVING_MAX). Past it a request
   * is held before it leases, and leases in turn (`holdArriving`): a herd (ten thousand
   * volunteers reconnecting) would queue on the pool otherwise, each request keeping a suspended
   * async frame per middleware, ~38 KB (docs/architecture.md, "Dispatch", waiting volunteers).
   */
  arrivingMax?: number;
}

export interface WorkWaiters {
  /** Holds `request` until an attempt gets work, its `ms` pass, a newer request of its volunteer comes, it `leave`s, or `close()`. */
  hold<T>(request: WaitRequest<T>): void;
  /** `request`'s client went: its wait ends ("gone") if it still waits. */
  leave(request: WaitRequest<unknown>): void;
  /**
   * A lease request that may wait leases once as it arrives: a function to call when that lease
   * is done, or null when `arrivingMax` lease already; then it is held at once (`holdArriving`).
   */
  arrive(): (() => void) | null;
  /**
   * Holds `request` as `hold` does, before it leased: its `first` lease runs when one of the
   * `arrivingMax` places is free, oldest first. Woken meanwhile, it is not tried: its turn comes.
   */
  holdArriving<T>(request: WaitRequest<T>): void;
  /** Work appeared for these tasks ("*": any): waiting requests try to lease, a few at a time. */
  wake(taskIds: readonly string[]): void;
  /** How many requests wait here now. */
  readonly size: number;
  /** Of those, how many were held before their first lease and have not had it yet (a herd being taken in). */
  readonly arriving: number;
  /** Answers every waiting request at once (no work) and stops listening. */
  close(): Promise<void>;
}

type Request = WaitRequest<unknown>;

/**
 * Timeouts share one timer per TIMEOUT_STEP_MS: a wait ends at most that much after its time,
 * and ten thousand waits hold ~250 timers, not one each.
 */
const TIMEOUT_STEP_MS = 100;

/**
 * Waiting lease requests of one process. A wake-up serves them oldest first, `concurrency`
 * attempts at a time, and stops once `concurrency` attempts in a row found nothing (the work
 * is gone; the rest keep waiting, and the next wake-up or the safety re-check tries again).
 */
export function createWorkWaiters(options: WorkWaitersOptions): WorkWaiters {
  const concurrency = options.concurrency ?? 32;
  const safetyMs = options.safetyMs ?? 5_000;
  const arrivingMax = options.arrivingMax ?? 64;
  /** Leases of arriving requests under way (inline in their handlers, or a held one's `first`). */
  let arriving = 0;
  /** Held requests whose first lease waits for a place, oldest first, and those whose first lease is under way. */
  const queuedFirst = new Set<Request>();
  const leasingFirst = new Set<Request>();
  // Each waiting request and the step its time runs out at. Insertion order is the order
  // served: a request that tried and got nothing goes to the back.
  const entries = new Map<Request, number>();
  const byVolunteer = new Map<string, Request>();
  const bySource = new Map<string, number>();
  /** The requests whose time runs out at each step, and that step's timer. */
  const steps = new Map<number, { requests: Set<Request>; timer: ReturnType<typeof setTimeout> }>();
  let closed = false;
  let draining = false;
  let again: Set<string> | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let lastDrainAt = 0;

  const remove = (request: Request) => {
    const step = entries.get(request);
    if (step === undefined) return false;
    entries.delete(request);
    const due = steps.get(step);
    if (due) {
      due.requests.delete(request);
      if (due.requests.size === 0) {
        clearTimeout(due.timer);
        steps.delete(step);
      }
    }
    queuedFirst.delete(request);
    leasingFirst.delete(request);
    if (byVolunteer.get(request.volunteerId) === request) byVolunteer.delete(request.volunteerId);
    if (request.source !== null) {
      const n = (bySource.get(request.source) ?? 1) - 1;
      if (n <= 0) bySource.delete(request.source);
      else bySource.set(request.source, n);
    }
    if (entries.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
    return true;
  };
  const end = (request: Request, how: WaitEnd<unknown>) => {
    if (remove(request)) request.end(how);
  };

  const timeOut = (step: number) => {
    const due = steps.get(step);
    steps.delete(step);
    if (due) for (const request of due.requests) end(request, { answer: null, why: "timeout" });
  };

  const wants = (request: Request, ids: ReadonlySet<string>) => !queuedFirst.has(request) && !leasingFirst.has(request) && (ids.has("*") || [...ids].some((id) => !request.excluded.has(id)));

  const leftArriving = () => {
    arriving--;
    nextArrivals();
  };
  /** First leases for held arrivals, while places are free. */
  const nextArrivals = () => {
    while (arriving < arrivingMax && queuedFirst.size > 0) {
      const request: Request = queuedFirst.values().next().value!;
      queuedFirst.delete(request);
      leasingFirst.add(request);
      arriving++;
      void leaseFirst(request);
    }
  };
  const leaseFirst = async (request: Request) => {
    try {
      const answer = await request.first();
      if (answer === null) return;
      if (entries.has(request)) end(request, { answer });
      else request.unclaimed(answer);
    } catch (error) {
      end(request, { answer: null, why: "failed" });
      console.warn(`a waiting lease request's first lease failed: ${(error as Error).message}`);
    } finally {
      leasingFirst.delete(request);
      leftArriving();
    }
  };

  /** Serves the waiting requests for `ids`, `concurrency` at a time, until a run of empty attempts. */
  const drain = async (ids: Set<string>) => {
    draining = true;
    lastDrainAt = Date.now();
    let served = 0;
    let cutShort = false;
    try {
      let emptyInARow = 0;
      // One drain at a time (`draining`; a wake-up meanwhile goes in `again`): none of these is mid-attempt.
      const queue = [...entries.keys()].filter((request) => wants(request, ids));
      let next = 0;
      const worker = async () => {
        while (!closed && emptyInARow < concurrency && next < queue.length) {
          const request = queue[next++]!;
          if (!entries.has(request)) continue;
          try {
            // The others woken with it: a new task gives each of them a share (the count stays as the drain began).
            const answer = await request.attempt(queue.length - 1);
            if (answer !== null) {
              emptyInARow = 0;
              served++;
              if (entries.has(request)) end(request, { answer });
              else request.unclaimed(answer);
            } else {
              emptyInARow++;
              // Tried and found nothing: to the back of the order.
              const step = entries.get(request);
              if (step !== undefined) {
                entries.delete(request);
                entries.set(request, step);
              }
            }
          } catch (error) {
            end(request, { answer: null, why: "gone" });
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

  /** Holds `held` (see `hold`); false when it was answered at once instead. */
  const add = (held: Request): boolean => {
    if (closed) {
      held.end({ answer: null, why: "closed" });
      return false;
    }
    // One waiting request per volunteer: the newer one takes the place (the older one's client
    // has usually gone, a reload or a retry), and the older is answered at once.
    const older = byVolunteer.get(held.volunteerId);
    if (older) end(older, { answer: null, why: "replaced" });
    if (entries.size >= options.total || (held.source !== null && (bySource.get(held.source) ?? 0) >= options.perSource)) {
      held.end({ answer: null, why: "refused" });
      return false;
    }
    // Up to 15 % sooner, at random: volunteers that began waiting together (a restart, a
    // task's end) do not all time out and ask again in the same moment.
    const step = Math.ceil((Date.now() + held.ms * (0.85 + 0.15 * Math.random())) / TIMEOUT_STEP_MS);
    let due = steps.get(step);
    if (!due) {
      due = { requests: new Set(), timer: setTimeout(timeOut, Math.max(0, step * TIMEOUT_STEP_MS - Date.now()), step) };
      steps.set(step, due);
    }
    due.requests.add(held);
    entries.set(held, step);
    byVolunteer.set(held.volunteerId, held);
    if (held.source !== null) bySource.set(held.source, (bySource.get(held.source) ?? 0) + 1);
    startTimer();
    return true;
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
    get arriving() {
      return queuedFirst.size + leasingFirst.size;
    },
    wake,
    hold<T>(request: WaitRequest<T>): void {
      add(request as Request);
    },
    holdArriving<T>(request: WaitRequest<T>): void {
      const held = request as Request;
      if (!add(held)) return;
      queuedFirst.add(held);
      nextArrivals();
    },
    leave(request) {
      end(request, { answer: null, why: "gone" });
    },
    arrive() {
      if (arriving >= arrivingMax) return null;
      arriving++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        leftArriving();
      };
    },
    async close() {
      closed = true;
      for (const request of [...entries.keys()]) end(request, { answer: null, why: "closed" });
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
  // The same waiters, whose close also stops listening.
  const closeWaiters = waiters.close;
  waiters.close = async () => {
    await closeWaiters();
    await stop().catch(() => {});
  };
  return waiters;
}
