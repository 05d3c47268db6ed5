import { type TaskStatus, taskStatuses } from "@crowdcompute/contract/statuses";
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";

export interface SiteStats {
  tasks: Record<TaskStatus, number>;
  chunks: { done: number; failed: number };
  cpuMs: number;
  /** Results accepted in the last 60 s, per second. */
  chunksPerSec: number;
  /** Volunteers holding a lease that is live or ended in the last 2 minutes. */
  volunteersOnline: number;
}

/** Volunteers holding a lease that is live or ended in the last 2 minutes (see `siteStats`). */
export const volunteersOnline = sql`(SELECT count(DISTINCT volunteer_id) FROM leases
  WHERE NOT reclaimed AND deadline > now() - interval '2 minutes')`;

const statuses = taskStatuses;

/**
 * Site-wide figures in one round trip, without counting chunks: totals come from the
 * sharded `task_counters`; the 60 s rate counts only the last minute's results, through
 * `results (task_id, created_at)` of the tasks that can have any; volunteers online come
 * from the partial index of unreclaimed leases. A volunteer posting results always holds
 * the lease it posts for, so "a lease or a result in the last 2 minutes" is "a lease whose
 * deadline is at most 2 minutes past".
 */
export async function siteStats(db: Db): Promise<SiteStats> {
  const [row] = await queryRows<{
    tasks: Record<string, number> | string | null;
    done: number | string;
    failed: number | string;
    cpu_ms: number | string;
    recent: number | string;
    online: number | string;
  }>(
    db,
    sql`SELECT
      (SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int AS n FROM tasks GROUP BY status) s) AS tasks,
      coalesce(c.done, 0) AS done, coalesce(c.failed, 0) AS failed, coalesce(c.cpu_ms, 0) AS cpu_ms,
      (SELECT coalesce(sum(r.n), 0) FROM tasks t JOIN results r ON r.task_id = t.id
        WHERE (t.status IN ('running', 'paused') OR t.finished_at > now() - interval '60 seconds')
          AND r.created_at > now() - interval '60 seconds') AS recent,
      ${volunteersOnline} AS online
    FROM (SELECT sum(done) AS done, sum(failed) AS failed, sum(cpu_ms) AS cpu_ms FROM task_counters) c`,
  );
  const byStatus = typeof row!.tasks === "string" ? (JSON.parse(row!.tasks) as Record<string, number>) : (row!.tasks ?? {});
  return {
    tasks: Object.fromEntries(statuses.map((s) => [s, Number(byStatus[s] ?? 0)])) as Record<TaskStatus, number>,
    chunks: { done: Number(row!.done), failed: Number(row!.failed) },
    cpuMs: Number(row!.cpu_ms),
    chunksPerSec: Math.round((Number(row!.recent) / 60) * 100) / 100,
    volunteersOnline: Number(row!.online),
  };
}

export interface LeaderboardEntry {
  /** `user`: all the volunteers of one signed-in user; `volunteer`: one anonymous volunteer. */
  kind: "user" | "volunteer";
  id: string;
  name: string;
  chunksDone: number;
  cpuMs: number;
  /** Earned by results that won their quorum (docs/architecture.md, "Replication, trust and reduce"). */
  credit: number;
}

/**
 * The top contributors by credit, then chunks done, from the per-volunteer counters (chunks
 * and CPU time kept by the statements that insert results, credit by the same; never by counting
 * results). Users are grouped across their volunteers and shown by their account's display
 * name, or, for an account without one, by the name of its newest volunteer.
 */
export async function leaderboard(db: Db, limit: number): Promise<LeaderboardEntry[]> {
  const rows = await queryRows<{ kind: "user" | "volunteer"; id: string; name: string; done: number | string; cpu_ms: number | string; credit: number | string }>(
    db,
    sql`SELECT g.kind, g.id, coalesce(u.display_name, g.newest_name) AS name, g.done, g.cpu_ms, g.credit
        FROM (SELECT CASE WHEN v.user_id IS NULL THEN 'volunteer' ELSE 'user' END AS kind,
                     coalesce(v.user_id, v.id) AS id, (array_agg(v.name ORDER BY v.created_at DESC, v.id DESC))[1] AS newest_name,
                     sum(vc.done) AS done, sum(vc.cpu_ms) AS cpu_ms, sum(vc.credit) AS credit
              FROM volunteer_counters vc JOIN volunteers v ON v.id = vc.volunteer_id
              GROUP BY 1, 2 ORDER BY sum(vc.credit) DESC, sum(vc.done) DESC, 2 LIMIT ${limit}) g
        LEFT JOIN users u ON g.kind = 'user' AND u.id = g.id
        ORDER BY g.credit DESC, g.done DESC, g.id`,
  );
  return rows.map((r) => ({ kind: r.kind, id: r.id, name: r.name, chunksDone: Number(r.done), cpuMs: Number(r.cpu_ms), credit: Number(r.credit) }));
}
