import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { resultCovers } from "../sql/result-rows.ts";

/**
 * What a task's rows say after a run, counted from scratch (slow: for tests and benches,
 * never for requests). A consistent task has one result per final chunk, counters equal to
 * those rows, and no chunk still out.
 */
export interface TaskAudit {
  total: number;
  /** Chunks with a result, counted over the rows (a block row counts its n chunks). */
  resultChunks: number;
  /** Result rows outside [0, total), or straddling total. */
  outOfRange: number;
  /** Result rows that overlap the row before them: a chunk stored twice (never, if exactly once holds). */
  overlaps: number;
  failedChunks: number;
  /** chunk_state rows that are neither failed nor closed by a result. */
  openChunks: number;
  counters: { done: number; failed: number; credit: number };
  /** Over the whole database: every volunteer's counters (a test's database holds one task). */
  volunteers: { done: number; credit: number };
}

export async function auditTask(db: Db, taskId: string): Promise<TaskAudit> {
  const [row] = await queryRows<Record<string, number | string>>(
    db,
    sql`SELECT
      t.total,
      (SELECT coalesce(sum(r.n), 0) FROM results r WHERE r.task_id = t.id) AS result_chunks,
      (SELECT count(*) FROM results r WHERE r.task_id = t.id AND (r.idx < 0 OR r.idx + r.n > t.total)) AS out_of_range,
      (SELECT count(*) FROM (SELECT r.idx < lag(r.idx + r.n) OVER (ORDER BY r.idx) AS overlapping FROM results r WHERE r.task_id = t.id) o
        WHERE o.overlapping) AS overlaps,
      (SELECT count(*) FROM chunk_state s WHERE s.task_id = t.id AND s.status = 'failed') AS failed_chunks,
      (SELECT count(*) FROM chunk_state s WHERE s.task_id = t.id AND s.status <> 'failed'
        AND NOT ${resultCovers(sql`s.task_id`, sql`s.idx`)}) AS open_chunks,
      (SELECT coalesce(sum(done), 0) FROM task_counters c WHERE c.task_id = t.id) AS done,
      (SELECT coalesce(sum(failed), 0) FROM task_counters c WHERE c.task_id = t.id) AS failed,
      (SELECT coalesce(sum(credit), 0) FROM task_counters c WHERE c.task_id = t.id) AS credit,
      (SELECT coalesce(sum(done), 0) FROM volunteer_counters) AS volunteer_done,
      (SELECT coalesce(sum(credit), 0) FROM volunteer_counters) AS volunteer_credit
    FROM tasks t WHERE t.id = ${taskId}`,
  );
  if (!row) throw new Error(`no task ${taskId}`);
  const n = (key: string) => Number(row[key]);
  return {
    total: n("total"),
    resultChunks: n("result_chunks"),
    outOfRange: n("out_of_range"),
    overlaps: n("overlaps"),
    failedChunks: n("failed_chunks"),
    openChunks: n("open_chunks"),
    counters: { done: n("done"), failed: n("failed"), credit: n("credit") },
    volunteers: { done: n("volunteer_done"), credit: n("volunteer_credit") },
  };
}

/** One volunteer's part in a replicated task, counted from the votes, per chunk and by the block (tests and benches only). */
export interface VolunteerAudit {
  volunteerId: string;
  votes: number;
  /** Votes that match the chunk's accepted result. */
  winningVotes: number;
  /** What those winning votes claimed (min of cpu, lease-to-result time, timeout): the credit they should earn. */
  winningClaims: number;
  /** The volunteer's credit as its counters hold it. */
  credit: number;
  wins: number;
  losses: number;
  trusted: boolean;
  banned: boolean;
}

export async function auditVolunteers(db: Db, taskId: string): Promise<VolunteerAudit[]> {
  const rows = await queryRows<Record<string, string | number | boolean>>(
    db,
    sql`WITH copies AS (
          -- votes chunk by chunk, and votes by the block (n chunks each; every counted one of a
          -- block decided whole won: block-votes.ts)
          SELECT v.volunteer_id, 1 AS n, coalesce(v.hash = r.hash, false) AS won, v.claim FROM votes v
          LEFT JOIN results r ON r.task_id = v.task_id AND r.idx = v.idx WHERE v.task_id = ${taskId}
          UNION ALL
          SELECT bv.volunteer_id, bv.n, r.idx IS NOT NULL AND bv.counted, bv.claim FROM block_votes bv
          LEFT JOIN results r ON r.task_id = bv.task_id AND r.idx = bv.first_idx AND r.n = bv.n WHERE bv.task_id = ${taskId}
        )
        SELECT v.volunteer_id, sum(v.n) AS votes,
          coalesce(sum(v.n) FILTER (WHERE v.won), 0) AS winning_votes,
          coalesce(sum(v.claim) FILTER (WHERE v.won), 0) AS winning_claims,
          coalesce(max(vc.credit), 0) AS credit, max(vol.wins) AS wins, max(vol.losses) AS losses,
          bool_or(vol.trusted) AS trusted, bool_or(vol.banned) AS banned
        FROM copies v
        JOIN volunteers vol ON vol.id = v.volunteer_id
        LEFT JOIN volunteer_counters vc ON vc.volunteer_id = v.volunteer_id
        GROUP BY v.volunteer_id ORDER BY v.volunteer_id`,
  );
  return rows.map((row) => ({
    volunteerId: String(row.volunteer_id),
    votes: Number(row.votes),
    winningVotes: Number(row.winning_votes),
    winningClaims: Number(row.winning_claims),
    credit: Number(row.credit),
    wins: Number(row.wins),
    losses: Number(row.losses),
    trusted: Boolean(row.trusted),
    banned: Boolean(row.banned),
  }));
}
