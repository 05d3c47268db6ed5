import { type Db, notifyTaskChanged } from "@crowdcompute/db";

// Live streams show a task at most every 500 ms, so a NOTIFY per submission
// would be a round trip on the hot path for nothing: each task is notified at most every
// 250 ms per process, with a trailing one so its last change is never lost. The first
// notification of a quiet task goes at once (waiting volunteers wake on it: "Dispatch").
const defaultWindowMs = 250;

/**
 * Notifies listeners (any process) that tasks changed (`notifyTaskChanged`), or another
 * channel's `notify`, at most every `windowMs` per task, the first at once.
 */
export function createTaskNotifier(db: Db, notify = notifyTaskChanged, windowMs = defaultWindowMs) {
  const lastAt = new Map<string, number>();
  const pending = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | null = null;

  const send = (taskIds: string[]) => {
    const now = Date.now();
    for (const id of taskIds) lastAt.set(id, now);
    // Fire and forget: a lost notification is covered by the streams' safety poll.
    notify(db, taskIds).catch(() => {});
  };

  const flush = () => {
    timer = null;
    const due = [...pending];
    pending.clear();
    if (due.length > 0) send(due);
  };

  return (taskIds: readonly string[]) => {
    const now = Date.now();
    const due: string[] = [];
    for (const id of new Set(taskIds)) {
      if ((lastAt.get(id) ?? 0) <= now - windowMs && !pending.has(id)) due.push(id);
      else pending.add(id);
    }
    if (due.length > 0) send(due);
    if (pending.size > 0 && !timer) timer = setTimeout(flush, windowMs);
    if (lastAt.size > 10_000) lastAt.clear();
  };
}

export type TaskNotifier = ReturnType<typeof createTaskNotifier>;
