// The figures behind the operator's GET /metrics that only the database knows. Each is one
// round trip and reads counters and live leases, never chunks, so a scrape stays cheap.
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "./db.ts";
import { volunteersOnline } from "./reads/stats.ts";
import { counterTotals, leasedChunksOfTask } from "./reads/task-counts.ts";

export interface OperatorFigures {
  /** As on the stats page: volunteers holding a lease that is live or ended in the last 2 minutes. */
  volunteersOnline: number;
  /**
   * `done` and `failed`: all tasks' final chunks. `pending` and `leased`: the chunks of
   * running and paused tasks still waiting, and out on a live lease.
   */
  chunks: { pending: number; leased: number; done: number; failed: number };
}

/** Volunteers online and chunks by state, in one round trip. */
export async function operatorFigures(db: Db): Promise<OperatorFigures> {
  const [row] = await queryRows<{ online: number | string; done: number | string; failed: number | string; leased: number | string; pending: number | string }>(
    db,
    sql`SELECT ${volunteersOnline} AS online, totals.done, totals.failed, live.leased, live.pending
        FROM (SELECT coalesce(sum(done), 0) AS done, coalesce(sum(failed), 0) AS failed FROM task_counters) totals,
             (SELECT coalesce(sum(leased), 0) AS leased, coalesce(sum(greatest(0, total - done - failed - leased)), 0) AS pending
              FROM (SELECT t.total, coalesce(c.done, 0) AS done, coalesce(c.failed, 0) AS failed, ${leasedChunksOfTask} AS leased
                    FROM tasks t ${counterTotals} WHERE t.status IN ('running', 'paused')) per_task) live`,
  );
  return {
    volunteersOnline: Number(row!.online),
    chunks: { pending: Number(row!.pending), leased: Number(row!.leased), done: Number(row!.done), failed: Number(row!.failed) },
  };
}

export interface PoolUse {
  /** The most connections the pool opens (PGlite: 1). */
  max: number;
  /** This process's open connections running a statement or a transaction (this query's own included). */
  busy: number;
  /** Its open connections waiting for work (a LISTEN connection is one of them). */
  idle: number;
}

type Client = { options?: { max?: number } };

/**
 * How much of its connection pool this process uses. A postgres.js pool is found in
 * `pg_stat_activity` by the application name `createPostgresDb` gives it; postgres.js has no
 * public count of its own. An embedded PGlite is one connection, busy answering this.
 */
export async function dbPoolUse(db: Db): Promise<PoolUse> {
  const max = (db as unknown as { $client?: Client }).$client?.options?.max;
  if (typeof max !== "number") return { max: 1, busy: 1, idle: 0 };
  const [row] = await queryRows<{ busy: number | string; idle: number | string }>(
    db,
    sql`SELECT count(*) FILTER (WHERE state <> 'idle') AS busy, count(*) FILTER (WHERE state = 'idle') AS idle
        FROM pg_stat_activity
        WHERE application_name = current_setting('application_name') AND datname = current_database()`,
  );
  return { max, busy: Number(row!.busy), idle: Number(row!.idle) };
}
