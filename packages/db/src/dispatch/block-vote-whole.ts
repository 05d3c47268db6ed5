// The common case of votes by the block as ONE statement (docs/architecture.md, "Replication,
// trust and reduce"): a first copy opens its block's vote; an extra copy whose results hash the
// same as every counted vote of its block is counted, and decides the block when the quorum
// with a trusted vote is met. Anything else (a copy that differs, a tolerance, a banned or
// repeat voter, a block no longer under vote as a whole) changes nothing here and is left to
// block-votes.ts. Per statement on a 2-core machine a round trip costs about what a block's
// rows do, so the hot path is one statement a copy.
import { type SQL, sql } from "drizzle-orm";
import { type Db, preparedRows } from "../db.ts";
import { addToTaskCounters, addToVolunteerCounters, boundedCpu } from "../sql/counters.ts";
import { runMask } from "../sql/report-masks.ts";
import { vouchersToTrust } from "./reputation.ts";
import { notSpotChecked } from "./submit-blocks.ts";
import { exhausted, type RunOfResults } from "./submit-chunks.ts";

type Voter = { volunteerId: string; userId: string | null; shard: number };

/**
 * The lease, locked as every statement on the work path takes it, and judged again (the block
 * statement that sent the run here has committed since): whether it still holds the whole
 * block unreported, and the voter as votes see it.
 */
export const leaseFacts = (input: { volunteerId: string }, run: RunOfResults) => sql`
  SELECT l.id, l.copy, l.n, l.first_idx, l.task_id, t.replication, t.quorum, t.total, t.tolerance,
         NOT l.reclaimed AND position(B'1' in l.reported) = 0 AND l.n = ${run.count} AND l.first_idx = ${run.first} AND t.replication > 1
           -- a trusted volunteer's first copy outside the spot-checked share is accepted alone (submit-blocks.ts)
           AND NOT coalesce(l.copy = 0 AND t.spot_check < 1 AND NOT v.banned AND (v.trusted OR coalesce(t.owner_id = v.user_id, false))
                            AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = v.user_id AND u.suspended_at IS NOT NULL)
                            AND ${notSpotChecked(sql`l.id`, sql`t`)}, false) AS open,
         (v.trusted OR coalesce(t.owner_id = v.user_id, false))
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = v.user_id AND u.suspended_at IS NOT NULL) AND NOT v.banned AS trusted, v.banned,
         ${boundedCpu(sql`${Math.round(run.cpuMs)}::bigint`, sql`l.created_at`, sql`t.timeout_ms`, sql`l.n`)} AS claim,
         encode(sha256(convert_to(${run.resultsJson}::text, 'UTF8')), 'hex') AS hash
  FROM leases l JOIN tasks t ON t.id = l.task_id JOIN volunteers v ON v.id = ${input.volunteerId}
  WHERE l.id = ${run.leaseRowId} AND l.task_id = ${run.taskId} AND t.status IN ('running', 'paused')
  FOR UPDATE OF l`;

/** What the statement did: `open` false sends the run chunk by chunk; `handled` false to block-votes.ts. */
export type WholeVote = { open: boolean; copy: number; handled: boolean; decided: number; untrusted_winner: boolean; exhausted: boolean };

export async function voteWhole(db: Db, input: Voter, run: RunOfResults): Promise<WholeVote> {
  const block = sql`v.task_id = s.task_id AND v.first_idx = s.first_idx`;
  // Prepared: every row is found by key (the lease, its block's state and votes), so one generic
  // plan serves; planned anew each time, this statement's CTEs cost more than running them.
  const rows = await preparedRows<WholeVote>(
    db,
    sql`WITH lease AS (${leaseFacts(input, run)}
        ), first AS (
          SELECT * FROM lease WHERE open AND copy = 0
        ), opened AS (
          INSERT INTO block_state (task_id, first_idx, n, needed, copies_out, votes_in)
          SELECT task_id, first_idx, n, replication, 0, CASE WHEN banned THEN 0 ELSE 1 END FROM first
          ON CONFLICT DO NOTHING RETURNING n
        ), state AS (
          -- an extra copy, by a counted voter, of a task without a tolerance: its block, locked after its lease
          SELECT s.* FROM block_state s, lease
          WHERE lease.open AND lease.copy > 0 AND NOT lease.banned AND lease.tolerance IS NULL
            AND s.task_id = lease.task_id AND s.first_idx = lease.first_idx AND s.n = lease.n
          FOR UPDATE OF s
        ), tally AS (
          SELECT s.task_id, s.first_idx, s.n, s.needed, lease.quorum,
                 (SELECT count(*) FROM block_votes v WHERE ${block} AND v.counted)::int AS votes,
                 (SELECT coalesce(bool_or(v.trusted), false) OR lease.trusted FROM block_votes v WHERE ${block} AND v.counted) AS vouched
          FROM state s, lease
          -- The statement's snapshot predates the lock: when another copy's vote committed while
          -- this one waited for the block, the count it reads falls short of the locked row's,
          -- and the copy goes the transaction's way (block-votes.ts), which reads after locking.
          WHERE s.votes_in = (SELECT count(*) FROM block_votes v WHERE ${block} AND v.counted)
            -- every counted vote hashes the same as this copy, and neither this volunteer nor its user voted
            AND NOT EXISTS (SELECT 1 FROM block_votes v WHERE ${block} AND v.counted AND v.hash <> lease.hash)
            AND NOT EXISTS (SELECT 1 FROM block_votes v WHERE ${block} AND (v.volunteer_id = ${input.volunteerId} OR v.user_id = ${input.userId}))
        ), voted AS (
          INSERT INTO block_votes (task_id, first_idx, n, volunteer_id, user_id, hash, results, cpu_ms, claim, trusted, counted)
          SELECT task_id, first_idx, n, ${input.volunteerId}, ${input.userId}, hash, ${run.resultsJson}::text, claim, claim, trusted, NOT banned
          FROM lease WHERE EXISTS (SELECT 1 FROM opened) OR EXISTS (SELECT 1 FROM tally)
          ON CONFLICT DO NOTHING RETURNING *
        ), decides AS (
          SELECT * FROM tally WHERE vouched AND votes + 1 >= quorum AND EXISTS (SELECT 1 FROM voted)
        ), ${decidedBlock(sql`decides`, sql`voted`)}, kept AS (
          -- not decided: one more counted vote; a quorum of untrusted copies wants one more, trusted, copy
          UPDATE block_state s SET copies_out = greatest(s.copies_out - 1, 0), votes_in = s.votes_in + 1,
            needed = CASE WHEN t.votes + 1 >= t.quorum AND s.needed <= t.votes + 1 THEN t.votes + 2 ELSE s.needed END
          FROM tally t WHERE s.task_id = t.task_id AND s.first_idx = t.first_idx AND EXISTS (SELECT 1 FROM voted) AND NOT EXISTS (SELECT 1 FROM decides)
        ), counters AS (
          -- first copy: its chunks replicated; every copy received; a decision: done, CPU time and credit
          ${addToTaskCounters(
            ["replicated", "copies", "done", "cpu_ms", "credit"],
            sql`SELECT ${run.taskId}::uuid, ${input.shard}, (SELECT coalesce(sum(n), 0) FROM opened), coalesce(sum(v.n) FILTER (WHERE v.counted), 0),
                       coalesce((SELECT sum(own_chunks) FROM inserted), 0), coalesce((SELECT sum(cpu_ms) FROM inserted), 0),
                       CASE WHEN EXISTS (SELECT 1 FROM inserted) THEN (SELECT sum(claim) FROM winners) ELSE 0 END
                FROM voted v HAVING count(*) > 0`,
          )}
        ), marked AS (
          UPDATE leases l SET reported = ${runMask(sql`l.n`, sql`0`, sql`l.n`)} FROM voted WHERE l.id = ${run.leaseRowId}
        )
        SELECT lease.open, lease.copy, EXISTS (SELECT 1 FROM voted) AS handled,
               coalesce((SELECT sum(n) FROM inserted), 0)::int AS decided,
               EXISTS (SELECT 1 FROM winners WHERE NOT trusted) AS untrusted_winner, ${exhausted(sql`lease.task_id`)} AS exhausted
        FROM lease`,
  );
  return rows[0] ?? { open: false, copy: 0, handled: false, decided: 0, untrusted_winner: false, exhausted: false };
}

/**
 * CTEs deciding the block `decides` names (task_id, first_idx, n; one row at most) from its
 * counted votes and the copy just `voted` (block_votes rows the statement inserts, which it
 * cannot read back from the table), which all agree and include a trusted one: `winners`, the results row
 * `inserted` (the side's first trusted copy: `own_chunks` are the task's own), the winning
 * volunteers' counters and wins (vouched where a vouching vote shares the side), the block's
 * state row gone, and its chunks' live rows.
 */
export function decidedBlock(decides: SQL, voted: SQL): SQL {
  return sql`winners AS (
      SELECT v.volunteer_id, v.trusted, v.claim, v.created_at, v.results, v.hash, v.cpu_ms, v.n, v.task_id, v.first_idx
      FROM ${decides} d JOIN block_votes v ON v.task_id = d.task_id AND v.first_idx = d.first_idx AND v.counted
      UNION ALL
      SELECT v.volunteer_id, v.trusted, v.claim, v.created_at, v.results, v.hash, v.cpu_ms, v.n, v.task_id, v.first_idx
      FROM ${voted} v WHERE v.counted AND EXISTS (SELECT 1 FROM ${decides})
    ), leader AS (
      SELECT * FROM winners ORDER BY NOT trusted, created_at, volunteer_id LIMIT 1
    ), inserted AS (
      INSERT INTO results (task_id, idx, n, result, volunteer_id, cpu_ms, hash)
      SELECT task_id, first_idx, n, results, volunteer_id, cpu_ms, hash FROM leader
      ON CONFLICT DO NOTHING
      RETURNING task_id, idx, n, cpu_ms, volunteer_id, least(n, greatest((SELECT total FROM tasks WHERE id = task_id) - idx, 0)) AS own_chunks
    ), volunteer_credit AS (
      -- done and cpu_ms go to the volunteer whose copy became the result; credit to every winning vote
      ${addToVolunteerCounters(
        sql`SELECT volunteer_id, sum(done), sum(cpu_ms), sum(credit), now() FROM (
              SELECT w.volunteer_id, 0 AS done, 0 AS cpu_ms, w.claim AS credit FROM winners w WHERE EXISTS (SELECT 1 FROM inserted)
              UNION ALL SELECT volunteer_id, own_chunks, cpu_ms, 0 FROM inserted
            ) x GROUP BY volunteer_id ORDER BY volunteer_id`,
      )}
    ), shared AS (
      -- per winning vote, the other vouching votes on its side (admins' or earned-trust volunteers')
      SELECT w.volunteer_id, o.volunteer_id AS voucher FROM winners w
      JOIN winners o ON o.volunteer_id <> w.volunteer_id AND o.trusted
      JOIN volunteers ov ON ov.id = o.volunteer_id AND ov.trusted AND NOT ov.banned
      WHERE EXISTS (SELECT 1 FROM inserted)
    ), volunteer_wins AS (
      UPDATE volunteers v SET wins = v.wins + w.n,
        vouched_wins = v.vouched_wins + CASE WHEN cardinality(w.vouchers) > 0 THEN w.n ELSE 0 END,
        vouchers = CASE WHEN cardinality(v.vouchers) >= ${vouchersToTrust} THEN v.vouchers
                        ELSE array(SELECT DISTINCT u FROM unnest(v.vouchers || w.vouchers) u ORDER BY u LIMIT ${vouchersToTrust}) END
      FROM (SELECT w.volunteer_id, w.n, array(SELECT DISTINCT s.voucher FROM shared s WHERE s.volunteer_id = w.volunteer_id) AS vouchers
            FROM winners w WHERE EXISTS (SELECT 1 FROM inserted)) w
      WHERE v.id = w.volunteer_id
    ), settled AS (
      DELETE FROM block_state s USING ${decides} d WHERE s.task_id = d.task_id AND s.first_idx = d.first_idx
    ), live_cleared AS (
      DELETE FROM chunk_live cl USING ${decides} d WHERE cl.task_id = d.task_id AND cl.idx >= d.first_idx AND cl.idx < d.first_idx + d.n
        AND EXISTS (SELECT 1 FROM inserted)
    )`;
}
