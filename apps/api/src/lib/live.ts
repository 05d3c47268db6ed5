// How live streams learn that a task changed: Postgres LISTEN/NOTIFY where the
// runtime can hold a listening connection (Node), short polling where it cannot (Workers).
import { type Db, listenTaskChanged } from "@crowdcompute/db";

export interface ChangeFeed {
  /** "listen": woken by NOTIFY (and a slow safety poll); "poll": woken by a timer only. */
  readonly mode: "listen" | "poll";
  /**
   * Resolves when `taskId` (any task, for null) may have changed, at the latest after the
   * feed's poll interval, or at once when `signal` aborts.
   */
  wait(taskId: string | null, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Wakes every `intervalMs`: for Workers, and wherever LISTEN is not available. */
export function pollingFeed(intervalMs = 1_000): ChangeFeed {
  return { mode: "poll", wait: (_taskId, signal) => sleep(intervalMs, signal), close: async () => {} };
}

/**
 * Wakes on `notifyTaskChanged` from any process on the same database. The safety poll
 * covers writers that do not notify (yet) and a listening connection that dropped.
 */
export async function listeningFeed(db: Db, safetyPollMs = 5_000): Promise<ChangeFeed> {
  const waiters = new Map<string, Set<() => void>>();
  const wake = (key: string) => {
    const set = waiters.get(key);
    if (!set) return;
    waiters.delete(key);
    for (const resolve of set) resolve();
  };
  const stop = await listenTaskChanged(db, (taskIds) => {
    for (const id of taskIds) wake(id);
    wake("*");
  });
  return {
    mode: "listen",
    wait(taskId, signal) {
      const key = taskId ?? "*";
      return new Promise<void>((resolve) => {
        let set = waiters.get(key);
        if (!set) waiters.set(key, (set = new Set()));
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          const current = waiters.get(key);
          current?.delete(done);
          if (current?.size === 0) waiters.delete(key);
          resolve();
        };
        const timer = setTimeout(done, safetyPollMs);
        signal.addEventListener("abort", done, { once: true });
        set.add(done);
      });
    },
    close: stop,
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
