import { sql } from "drizzle-orm";
import type { Db } from "./db.ts";

/** The channel that carries the ids of tasks whose progress or status changed. */
const taskChangedChannel = "cc_task_changed";
/**
 * The channel that carries the ids of tasks that got work to lease: started or resumed, inputs
 * appended, chunks back from an expiry, a release or a retry, copies wanted. Waiting lease
 * requests wake on it (docs/architecture.md, "Dispatch", waiting volunteers), not on every
 * submit's progress.
 */
const workReadyChannel = "cc_work_ready";

// A NOTIFY payload must stay under 8000 bytes: 36-byte ids, comma-separated.
const idsPerNotify = 200;

/**
 * Tells every listening API process (Postgres LISTEN/NOTIFY) that these tasks changed, so
 * their live streams re-read them now instead of at the next poll. Call it after a
 * statement that moves counters or status commits. Cheap: one `pg_notify` per 200 ids,
 * and Postgres folds identical notifications within one transaction.
 * @example await notifyTaskChanged(db, [taskId]);
 */
export async function notifyTaskChanged(db: Db, taskIds: readonly string[]): Promise<void> {
  await notify(db, taskChangedChannel, taskIds);
}

/**
 * Tells every listening API process that these tasks have work to lease now, so the lease
 * requests waiting there (`waitMs`) try again. Call it after the statement that made the work
 * commits. An empty list means "some task": waiters of every task wake.
 * @example await notifyWorkReady(db, [taskId]);
 */
export async function notifyWorkReady(db: Db, taskIds: readonly string[]): Promise<void> {
  await notify(db, workReadyChannel, taskIds.length === 0 ? ["*"] : taskIds);
}

async function notify(db: Db, channel: string, taskIds: readonly string[]): Promise<void> {
  const unique = [...new Set(taskIds)];
  for (let i = 0; i < unique.length; i += idsPerNotify) {
    await db.execute(sql`SELECT pg_notify(${channel}, ${unique.slice(i, i + idsPerNotify).join(",")})`);
  }
}

type PostgresJsClient = { listen(channel: string, cb: (payload: string) => void): Promise<{ unlisten(): Promise<void> }> };
type PgliteClient = { listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>; waitReady?: unknown };

/**
 * Calls `onChange` with the task ids of every notification on this database, from any
 * process. Works on both drivers (postgres.js opens one dedicated connection; PGlite hears
 * its own process). Returns how to stop listening.
 */
export async function listenTaskChanged(db: Db, onChange: (taskIds: string[]) => void): Promise<() => Promise<void>> {
  return listen(db, taskChangedChannel, onChange);
}

/** Calls `onReady` with the task ids of every `notifyWorkReady`, from any process ("*": some task). Returns how to stop. */
export async function listenWorkReady(db: Db, onReady: (taskIds: string[]) => void): Promise<() => Promise<void>> {
  return listen(db, workReadyChannel, onReady);
}

async function listen(db: Db, channel: string, onChange: (taskIds: string[]) => void): Promise<() => Promise<void>> {
  const client = (db as unknown as { $client?: unknown }).$client as PostgresJsClient | PgliteClient | undefined;
  if (!client || typeof client.listen !== "function") throw new Error("this database client cannot LISTEN");
  const handler = (payload: string) => onChange(payload.split(",").filter(Boolean));
  const listening: unknown = await client.listen(channel, handler);
  if (typeof listening === "function") return listening as () => Promise<void>;
  return () => (listening as { unlisten(): Promise<void> }).unlisten();
}
