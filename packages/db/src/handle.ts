// An open database as the drivers (postgres.ts, pglite.ts, workers.ts) hand it out: the
// database, what this process keeps for it, and how to close it.
import { attachProcessState, type Db, type PreparedRunner } from "./db.ts";
import { type DispatchCache, dispatchCacheOf } from "./dispatch/dispatch-cache.ts";

/** An open database and how to close it. */
export interface DbHandle {
  db: Db;
  kind: "postgres" | "pglite";
  /** This process's dispatch cache for this database (the same as `dispatchCacheOf(db)`). */
  dispatchCache: DispatchCache;
  close(): Promise<void>;
}

/**
 * A handle for a drizzle database its driver has opened, with its dispatch cache, and
 * `prepared` (where the driver has one) for `preparedRows` to run statements prepared on the
 * database itself.
 */
export function createDbHandle(db: Db, kind: DbHandle["kind"], close: () => Promise<void>, prepared: PreparedRunner | null = null): DbHandle {
  attachProcessState(db, prepared);
  return { db, kind, dispatchCache: dispatchCacheOf(db), close };
}
