import { sql } from "drizzle-orm";
import { type Db, queryRows, retryOnDeadlockOrSerialization } from "../db.ts";
import { dispatchCacheOf } from "./dispatch-cache.ts";

export interface HeartbeatOutcome {
  /** Lease rows still the volunteer's: each deadline now runs one more silence window, or to its latest. */
  extended: number[];
  /** Lease rows already taken back (or unknown), or past their latest deadline: their chunks are someone else's now. */
  lost: number[];
  /** Lease rows of tasks that are no longer running: stop computing them. */
  cancelled: number[];
}

/**
 * Keeps a live volunteer's leases from expiring: each deadline becomes at least now + the
 * silence window, min(`silentMs`, timeoutMs + grace) (docs/architecture.md, "Dispatch"), so a
 * volunteer that beats keeps its long chunk, and the blocks queued behind it, while one that
 * stops beating loses them about one window after its last beat (12–15 s with the page's 3 s beats).
 * Never past the lease's `latest` ("Bounds on what one volunteer holds"): what its chunks need
 * at the volunteer's threads, plus grace, so beating keeps no chunk indefinitely.
 * Only deadlines that move by 5 s or more (a third of the window if less) are written, their rows locked in id order
 * (concurrent beats wait in turn rather than deadlock), and a lost race is retried: the
 * page's 3 s beats write a block every 6 s (a vanished volunteer's blocks go back 12–15 s after
 * its last beat), and a volunteer beating in a loop writes each block at most every 5 s.
 */
export async function heartbeatLeases(db: Db, input: { volunteerId: string; leaseRowIds: readonly number[]; graceMs: number; silentMs?: number }): Promise<HeartbeatOutcome> {
  const outcome: HeartbeatOutcome = { extended: [], lost: [], cancelled: [] };
  if (input.leaseRowIds.length === 0) return outcome;
  const ids = JSON.stringify([...new Set(input.leaseRowIds)].sort((a, b) => a - b));
  // The silence window (ms) of a lease whose task times out after c.timeout_ms.
  const silent = input.silentMs === undefined ? sql`` : sql`, ${input.silentMs}::bigint`;
  const windowMs = sql`least(c.timeout_ms + ${input.graceMs}::bigint${silent})`;
  const rows = await retryOnDeadlockOrSerialization(() =>
    queryRows<{ id: string | number; state: "extended" | "lost" | "cancelled" }>(
      db,
      sql`WITH wanted AS (
            SELECT value::bigint AS id FROM json_array_elements_text(${ids}::json)
          ), current AS (
            SELECT l.id, t.status AS task_status, t.timeout_ms, l.reclaimed, l.deadline, coalesce(l.latest, 'infinity'::timestamptz) AS latest
            FROM leases l JOIN tasks t ON t.id = l.task_id
            WHERE l.id IN (SELECT id FROM wanted) AND l.volunteer_id = ${input.volunteerId}
          ), due AS (
            -- Only a deadline that moves by 5 s or more (a third of the window when that is
            -- less) is written: the page's 3 s beats rewrite a block every other beat, a beat
            -- that repeats itself, or a block at its latest deadline, writes nothing and locks
            -- nothing. Every write is a commit, and commits are what a busy Postgres runs out of.
            SELECT c.id FROM current c
            WHERE NOT c.reclaimed AND c.task_status IN ('running', 'paused')
              AND least(c.latest, now() + make_interval(secs => ${windowMs} / 1000.0))
                  > c.deadline + make_interval(secs => least(5000, ${windowMs} / 3) / 1000.0)
          ), locked AS (
            SELECT l.id FROM leases l WHERE l.id IN (SELECT id FROM due) ORDER BY l.id FOR NO KEY UPDATE
          ), extended AS (
            UPDATE leases l
            SET deadline = least(coalesce(l.latest, 'infinity'::timestamptz),
                                 greatest(l.deadline, now() + make_interval(secs => ${windowMs} / 1000.0)))
            FROM locked k JOIN current c ON c.id = k.id
            WHERE l.id = k.id AND NOT l.reclaimed
          )
          SELECT w.id,
            CASE WHEN c.id IS NULL OR c.reclaimed THEN 'lost'
                 WHEN c.task_status NOT IN ('running', 'paused') THEN 'cancelled'
                 -- past its latest deadline: its chunks go back at the next sweep
                 WHEN c.latest <= now() THEN 'lost'
                 ELSE 'extended' END AS state
          FROM wanted w
          LEFT JOIN current c ON c.id = w.id`,
    ),
  );
  for (const row of rows) outcome[row.state].push(Number(row.id));
  return outcome;
}

/**
 * The shortest gap between two of a volunteer's beats that carry progress or checkpoints, in one
 * process: the page sends at most one a second, so this refuses only a client in a hurry, and a
 * volunteer's live rows are written at most twice a second a process (docs/architecture.md,
 * "Progress, console and checkpoints").
 */
const liveReportGapMs = 500;

/**
 * Whether a beat of `volunteerId` that carries progress or checkpoints may write them now (and if
 * so, notes that it does): false within 500 ms of the last one in this process, when the caller
 * answers 429 with Retry-After and writes nothing. Entries older than the gap are dropped past
 * 10,000 volunteers.
 */
export function liveReportAllowed(db: Db, volunteerId: string, now = Date.now()): boolean {
  const last = dispatchCacheOf(db).liveReportedAt;
  const at = last.get(volunteerId);
  if (at !== undefined && now - at < liveReportGapMs) return false;
  if (last.size >= 10_000) for (const [id, when] of last) if (now - when >= liveReportGapMs) last.delete(id);
  last.set(volunteerId, now);
  return true;
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
  return dispatchCacheOf(db).oneAtATime(`beat:${volunteerId}`, maxBeatsQueued, beat);
}
