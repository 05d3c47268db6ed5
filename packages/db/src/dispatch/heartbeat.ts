import { sql } from "drizzle-orm";
import { type Db, dispatcherOf, queryRows, withRetry } from "../db.ts";

export interface HeartbeatOutcome {
  /** Lease rows whose deadline now runs at least one more chunk timeout + grace. */
  extended: number[];
  /** Lease rows already taken back (or unknown), or past their latest deadline: their chunks are someone else's now. */
  lost: number[];
  /** Lease rows of tasks that are no longer running: stop computing them. */
  cancelled: number[];
}

/**
 * Keeps a live volunteer's leases from expiring: each deadline becomes at least
 * now + timeoutMs + grace, so a batch that runs long but steadily is never reissued, while
 * a silent volunteer still loses its chunks one timeout after its last heartbeat. Never past
 * the lease's `latest` (docs/architecture.md, "Bounds on what one volunteer holds"): what its
 * chunks need at the volunteer's threads, plus grace, so beating keeps no chunk indefinitely.
 * The lease rows are locked in id order (concurrent beats of one volunteer wait in turn rather
 * than deadlock), and a lost race is retried.
 */
export async function heartbeatLeases(db: Db, input: { volunteerId: string; leaseRowIds: readonly number[]; graceMs: number }): Promise<HeartbeatOutcome> {
  const outcome: HeartbeatOutcome = { extended: [], lost: [], cancelled: [] };
  if (input.leaseRowIds.length === 0) return outcome;
  const ids = JSON.stringify([...new Set(input.leaseRowIds)].sort((a, b) => a - b));
  const rows = await withRetry(() =>
    queryRows<{ id: string | number; state: "extended" | "lost" | "cancelled" }>(
      db,
      sql`WITH wanted AS (
            SELECT value::bigint AS id FROM json_array_elements_text(${ids}::json)
          ), current AS (
            SELECT l.id, t.status AS task_status, t.timeout_ms, l.reclaimed
            FROM leases l JOIN tasks t ON t.id = l.task_id
            WHERE l.id IN (SELECT id FROM wanted) AND l.volunteer_id = ${input.volunteerId}
            ORDER BY l.id FOR NO KEY UPDATE OF l
          ), extended AS (
            UPDATE leases l
            SET deadline = least(coalesce(l.latest, 'infinity'::timestamptz),
                                 greatest(l.deadline, now() + make_interval(secs => (c.timeout_ms + ${input.graceMs}::bigint) / 1000.0)))
            FROM current c
            WHERE l.id = c.id AND NOT c.reclaimed AND c.task_status IN ('running', 'paused') AND coalesce(l.latest, 'infinity'::timestamptz) > now()
            RETURNING l.id
          )
          SELECT w.id,
            CASE WHEN e.id IS NOT NULL THEN 'extended'
                 -- past its latest deadline: its chunks go back at the next sweep
                 WHEN c.id IS NULL OR c.reclaimed OR c.task_status IN ('running', 'paused') THEN 'lost'
                 ELSE 'cancelled' END AS state
          FROM wanted w
          LEFT JOIN current c ON c.id = w.id
          LEFT JOIN extended e ON e.id = w.id`,
    ),
  );
  for (const row of rows) outcome[row.state].push(Number(row.id));
  return outcome;
}

/** A volunteer's heartbeats running or waiting in one process; more are refused at once. */
const maxBeatsQueued = 2;

/**
 * Runs `beat` (a volunteer's heartbeat, from reading its body to `heartbeatLeases` and
 * `recordChunkLive`) after the volunteer's heartbeats before it in this process. Beats for one block wait on each other's
 * row locks in Postgres, each holding a pooled connection the while: sixteen at once took the
 * pool from everyone else (other users' p99 1.7 s). Here they wait without one. Null when
 * `maxBeatsQueued` are already running or waiting: the caller answers 429 with Retry-After.
 */
export function oneBeatAtATime<T>(db: Db, volunteerId: string, beat: () => Promise<T>): Promise<T> | null {
  return dispatcherOf(db).oneAtATime(`beat:${volunteerId}`, maxBeatsQueued, beat);
}
