// Votes on replicated chunks (docs/architecture.md, "Replication, trust and reduce"): copies
// recorded as votes, grouped within a task's tolerance, and each chunk they touch settled. What
// a decided vote does to its volunteers is reputation.ts.
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { addToTaskCounters, addToVolunteerCounters, boundedCpu } from "../sql/counters.ts";
import { resultCovers } from "../sql/result-rows.ts";
import { penalizeLosers, promoteProbationers, vouchersToTrust } from "./reputation.ts";
import type { ChunkResult } from "./submit-chunks.ts";
import { sidesWithin, type Tolerance, type ToleranceVote } from "./tolerance.ts";

export interface Vote extends ChunkResult {
  /** The lease's copy number (0 for the first copy, handed out in blocks). */
  copy: number;
  /** First report of this chunk by a lease that still held it: its copy slot frees up. */
  firstReport: boolean;
}

type ChunkTally = {
  task_id: string;
  idx: number;
  needed: number;
  copies_out: number;
  votes: number;
  quorum: number;
  replication: number;
  max_attempts: number;
  best_hash: string | null;
  best_count: number;
  trusted_hash: string | null;
  trusted_count: number;
};

/**
 * Records copies of replicated chunks as votes and settles each chunk they touch: done when
 * `quorum` results agree and a trusted vote is among them; agreeing untrusted votes wait for
 * one (another copy at a time, never a failure); another copy when they disagree, failed as
 * `no-quorum` past `replication + maxAttempts` copies. The
 * chunks' rows are locked first, so two votes arriving together are counted one after the
 * other and neither misses the quorum. Results are compared by the sha256 of their RFC 8785
 * canonical JSON, computed here, never taken from the client.
 */
export async function recordVotes(db: Db, input: { volunteerId: string; userId: string | null; shard: number; votes: Vote[] }): Promise<{ won: number; finishedChunksOf: Set<string> }> {
  const items = input.votes.map((v) => ({
    lease_id: v.leaseRowId,
    task_id: v.taskId,
    idx: v.index,
    result: v.result,
    cpu_ms: v.cpuMs,
    frees_copy: v.copy > 0 && v.firstReport,
  }));
  const itemsJson = JSON.stringify(items);
  const itemTable = sql`json_to_recordset(${itemsJson}::json) AS x(lease_id bigint, task_id uuid, idx int, result text, cpu_ms int, frees_copy boolean)`;

  return db.transaction(async (tx) => {
    // Chunks not final yet come under vote (a first copy's result opens the vote): each one
    // opened is a chunk replicated, in the task's sharded counters.
    await tx.execute(sql`
      WITH opened AS (
        INSERT INTO chunk_state (task_id, idx, status, needed)
        SELECT DISTINCT x.task_id, x.idx, 'voting', t.replication FROM ${itemTable}
        JOIN tasks t ON t.id = x.task_id
        -- not final (a block row may cover it), nor under a vote by the block (block-votes.ts:
        -- a copy reported again, which changes nothing)
        WHERE NOT ${resultCovers(sql`x.task_id`, sql`x.idx`)}
          AND coalesce((SELECT b.first_idx + b.n <= x.idx FROM block_state b WHERE b.task_id = x.task_id AND b.first_idx <= x.idx
                        ORDER BY b.first_idx DESC LIMIT 1), true)
        ORDER BY x.task_id, x.idx
        ON CONFLICT (task_id, idx) DO UPDATE SET status = 'voting', needed = greatest(chunk_state.needed, excluded.needed)
          WHERE chunk_state.status IN ('pending', 'leased')
        RETURNING task_id
      )
      ${addToTaskCounters(["replicated"], sql`SELECT task_id, ${input.shard}, count(*) FROM opened GROUP BY task_id ORDER BY task_id`)}`);
    await tx.execute(sql`
      SELECT 1 FROM chunk_state cs WHERE (cs.task_id, cs.idx) IN (SELECT task_id, idx FROM ${itemTable})
      ORDER BY cs.task_id, cs.idx FOR UPDATE`);
    await tx.execute(sql`
      WITH fresh AS (
        INSERT INTO votes (task_id, idx, volunteer_id, user_id, hash, result, cpu_ms, claim, trusted, counted)
        SELECT x.task_id, x.idx, ${input.volunteerId}, ${input.userId},
               encode(sha256(convert_to(x.result, 'UTF8')), 'hex'), x.result, x.cpu_ms,
               ${boundedCpu(sql`x.cpu_ms`, sql`l.created_at`, sql`t.timeout_ms`)},
               (v.trusted OR coalesce(t.owner_id = v.user_id, false))
                 -- a suspended account's volunteers vouch for nothing, its own tasks included
                 AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = v.user_id AND u.suspended_at IS NOT NULL), NOT v.banned
        FROM ${itemTable}
        JOIN tasks t ON t.id = x.task_id
        JOIN volunteers v ON v.id = ${input.volunteerId}
        LEFT JOIN leases l ON l.id = x.lease_id
        JOIN chunk_state cs ON cs.task_id = x.task_id AND cs.idx = x.idx AND cs.status = 'voting'
        ORDER BY x.task_id, x.idx
        ON CONFLICT DO NOTHING
        RETURNING task_id, idx
      ), received AS (
        -- every copy that counts as a vote, the first included
        ${addToTaskCounters(["copies"], sql`SELECT task_id, ${input.shard}, count(*) FROM fresh GROUP BY task_id ORDER BY task_id`)}
      )
      UPDATE chunk_state cs SET copies_out = greatest(cs.copies_out - 1, 0)
      FROM ${itemTable} WHERE x.frees_copy AND cs.task_id = x.task_id AND cs.idx = x.idx AND cs.status = 'voting'`);

    await groupWithinTolerance(tx, itemTable);

    // A new statement: it sees every committed vote, and ours. Each chunk keeps its count of
    // counted votes (votes_in), which the lease statement's index of open copies reads.
    const tallies = await queryRows<ChunkTally>(
      tx,
      sql`WITH counted AS (
            UPDATE chunk_state cs SET votes_in = (SELECT count(*) FROM votes v WHERE v.task_id = cs.task_id AND v.idx = cs.idx AND v.counted)
            WHERE (cs.task_id, cs.idx) IN (SELECT DISTINCT task_id, idx FROM ${itemTable}) AND cs.status = 'voting'
            RETURNING cs.task_id, cs.idx, cs.needed, cs.copies_out, cs.votes_in
          )
          SELECT cs.task_id, cs.idx, cs.needed, cs.copies_out, t.quorum, t.replication, t.max_attempts, cs.votes_in::int AS votes,
                 best.hash AS best_hash, coalesce(best.n, 0)::int AS best_count,
                 vouched.hash AS trusted_hash, coalesce(vouched.n, 0)::int AS trusted_count
          FROM counted cs
          JOIN tasks t ON t.id = cs.task_id
          LEFT JOIN LATERAL (
            SELECT hash, count(*) AS n FROM votes v
            WHERE v.task_id = cs.task_id AND v.idx = cs.idx AND v.counted
            GROUP BY hash ORDER BY count(*) DESC LIMIT 1
          ) best ON true
          LEFT JOIN LATERAL (
            -- the largest side with a trusted vote in it: the only kind that can decide
            SELECT hash, count(*) AS n FROM votes v
            WHERE v.task_id = cs.task_id AND v.idx = cs.idx AND v.counted
            GROUP BY hash HAVING bool_or(v.trusted) ORDER BY count(*) DESC, min(v.created_at) LIMIT 1
          ) vouched ON true`,
    );

    const winners: { task_id: string; idx: number; hash: string }[] = [];
    const losers: { task_id: string; idx: number; votes: number }[] = [];
    const grow: { task_id: string; idx: number; needed: number }[] = [];
    // Per task: chunks decided, or failed, with copies that disagreed; volunteers banned.
    const figures = new Map<string, { disagreements: number; banned: number }>();
    const figure = (taskId: string) => figures.get(taskId) ?? figures.set(taskId, { disagreements: 0, banned: 0 }).get(taskId)!;
    for (const tally of tallies) {
      if (tally.trusted_hash && tally.trusted_count >= tally.quorum) {
        winners.push({ task_id: tally.task_id, idx: tally.idx, hash: tally.trusted_hash });
        if (tally.votes > tally.trusted_count) figure(tally.task_id).disagreements++;
        continue;
      }
      if (tally.best_count >= tally.quorum) {
        // A quorum of untrusted votes agrees: it waits for a trusted one, one copy out at a
        // time, however many untrusted copies come back (free identities cannot buy a quorum,
        // nor fail a chunk by agreeing).
        if (tally.needed <= tally.votes) grow.push({ task_id: tally.task_id, idx: tally.idx, needed: tally.votes + 1 });
        continue;
      }
      // Even if every outstanding copy agreed with the leader, would the copies planned reach
      // the quorum? If not, each such disagreement adds one copy, up to a cap.
      const shortfall = tally.quorum - tally.best_count - (tally.needed - tally.votes);
      if (shortfall <= 0) continue;
      const needed = tally.needed + 1;
      if (needed > tally.replication + tally.max_attempts) {
        losers.push({ task_id: tally.task_id, idx: tally.idx, votes: tally.votes });
        figure(tally.task_id).disagreements++;
      } else grow.push({ task_id: tally.task_id, idx: tally.idx, needed });
    }

    const finishedChunksOf = new Set<string>();
    let won = 0;
    if (winners.length > 0) {
      const rows = await queryRows<{ task_id: string }>(
        tx,
        sql`WITH w AS (
              SELECT * FROM json_to_recordset(${JSON.stringify(winners)}::json) AS w(task_id uuid, idx int, hash text)
            ), winning_votes AS (
              SELECT v.* FROM votes v JOIN w ON v.task_id = w.task_id AND v.idx = w.idx AND v.hash = w.hash AND v.counted
            ), inserted AS (
              INSERT INTO results (task_id, idx, result, volunteer_id, cpu_ms, hash)
              -- the winning value is the side's first trusted copy (its leader under a tolerance)
              SELECT DISTINCT ON (task_id, idx) task_id, idx, result, volunteer_id, cpu_ms, hash
              FROM winning_votes ORDER BY task_id, idx, NOT trusted, created_at, volunteer_id
              ON CONFLICT DO NOTHING
              RETURNING task_id, idx, cpu_ms, volunteer_id, hash
            ), credited AS (
              -- The winning votes of the chunks decided now, probed in the votes table by key:
              -- joined to the winning_votes CTE instead, the planner (which takes a CTE for one
              -- row) compared every pair, 33M for a block of 4096 (4 s).
              SELECT v.* FROM inserted i JOIN votes v ON v.task_id = i.task_id AND v.idx = i.idx AND v.hash = i.hash AND v.counted
            ), counted AS (
              ${addToTaskCounters(
                ["done", "cpu_ms", "credit"],
                sql`SELECT i.task_id, ${input.shard}, count(*) FILTER (WHERE i.idx < (SELECT total FROM tasks WHERE id = i.task_id)), sum(i.cpu_ms),
                           (SELECT coalesce(sum(c.claim), 0) FROM credited c WHERE c.task_id = i.task_id)
                    FROM inserted i GROUP BY i.task_id ORDER BY i.task_id`,
              )}
            ), volunteer_credit AS (
              -- done and cpu_ms go to the volunteer whose copy became the result; credit to every winning vote.
              ${addToVolunteerCounters(
                sql`SELECT volunteer_id, sum(done), sum(cpu_ms), sum(credit), now() FROM (
                      SELECT volunteer_id, 0 AS done, 0 AS cpu_ms, claim AS credit FROM credited
                      UNION ALL SELECT volunteer_id, 1, cpu_ms, 0 FROM inserted
                    ) x GROUP BY volunteer_id ORDER BY volunteer_id`,
              )}
            ), shared AS (
              -- Per winning vote, the other vouching votes on its side (admins' or earned-trust
              -- volunteers' trusted votes; an owner's own volunteer is trusted on its task but
              -- vouches for nobody), probed by key.
              SELECT c.volunteer_id, c.task_id, c.idx, o.volunteer_id AS voucher FROM credited c
              CROSS JOIN LATERAL (
                SELECT o.volunteer_id FROM votes o JOIN volunteers ov ON ov.id = o.volunteer_id AND ov.trusted AND NOT ov.banned
                WHERE o.task_id = c.task_id AND o.idx = c.idx AND o.hash = c.hash AND o.counted AND o.trusted AND o.volunteer_id <> c.volunteer_id
              ) o
            ), volunteer_wins AS (
              UPDATE volunteers v SET wins = v.wins + c.n, vouched_wins = v.vouched_wins + c.vouched,
                vouchers = CASE WHEN cardinality(v.vouchers) >= ${vouchersToTrust} THEN v.vouchers
                                ELSE array(SELECT DISTINCT u FROM unnest(v.vouchers || c.vouchers) u ORDER BY u LIMIT ${vouchersToTrust}) END
              FROM (SELECT c.volunteer_id, count(*) AS n,
                           (SELECT count(DISTINCT (s.task_id, s.idx)) FROM shared s WHERE s.volunteer_id = c.volunteer_id) AS vouched,
                           array(SELECT DISTINCT s.voucher FROM shared s WHERE s.volunteer_id = c.volunteer_id) AS vouchers
                    FROM credited c GROUP BY c.volunteer_id) c
              WHERE v.id = c.volunteer_id
            ), settled AS (
              DELETE FROM chunk_state cs USING inserted i WHERE cs.task_id = i.task_id AND cs.idx = i.idx
            )
            SELECT task_id FROM inserted`,
      );
      won = rows.length;
      for (const row of rows) finishedChunksOf.add(row.task_id);
      const penalties = await penalizeLosers(tx, winners);
      for (const taskId of penalties.reopened) finishedChunksOf.add(taskId);
      for (const [taskId, banned] of penalties.bannedOn) figure(taskId).banned += banned;
      await promoteProbationers(tx, winners);
    }
    if (grow.length > 0) {
      await tx.execute(sql`
        UPDATE chunk_state cs SET needed = g.needed
        FROM json_to_recordset(${JSON.stringify(grow)}::json) AS g(task_id uuid, idx int, needed int)
        WHERE cs.task_id = g.task_id AND cs.idx = g.idx`);
    }
    if (losers.length > 0) {
      await tx.execute(sql`
        WITH l AS (
          SELECT * FROM json_to_recordset(${JSON.stringify(losers)}::json) AS l(task_id uuid, idx int, votes int)
        ), failed AS (
          UPDATE chunk_state cs SET status = 'failed',
            last_error = jsonb_build_object('kind', 'no-quorum', 'message', l.votes || ' copies came back without ' || t.quorum || ' agreeing')
          FROM l JOIN tasks t ON t.id = l.task_id
          WHERE cs.task_id = l.task_id AND cs.idx = l.idx
          RETURNING cs.task_id, cs.idx, cs.last_error
        ), counted AS (
          ${addToTaskCounters(["failed"], sql`SELECT task_id, ${input.shard}, count(*) FROM failed GROUP BY task_id ORDER BY task_id`)}
        )
        UPDATE tasks t SET last_error = jsonb_build_object('index', f.idx) || f.last_error
        FROM (SELECT DISTINCT ON (task_id) * FROM failed ORDER BY task_id, idx DESC) f WHERE t.id = f.task_id`);
      for (const loser of losers) finishedChunksOf.add(loser.task_id);
    }
    if (figures.size > 0) {
      const rows = [...figures].map(([task_id, f]) => ({ task_id, ...f })).sort((a, b) => (a.task_id < b.task_id ? -1 : 1));
      await tx.execute(
        addToTaskCounters(
          ["disagreements", "banned"],
          sql`SELECT task_id, ${input.shard}, disagreements, banned
              FROM json_to_recordset(${JSON.stringify(rows)}::json) AS f(task_id uuid, disagreements int, banned int) ORDER BY task_id`,
        ),
      );
    }
    return { won, finishedChunksOf };
  });
}

/**
 * Tasks with a `tolerance`: the counted votes of the voting chunks touched are put in sides
 * (tolerance.ts, `sidesWithin`: trusted votes first, then by arrival, each joining the first
 * side whose leader it agrees with), and each vote carries its side's hash, its leader's own.
 * The tally and everything after it then group by hash as for exact agreement. Recomputed from
 * the votes' own results each time, so a trusted copy arriving later leads the side it joins.
 */
async function groupWithinTolerance(tx: Db, itemTable: ReturnType<typeof sql>): Promise<void> {
  const rows = await queryRows<ToleranceVote & { task_id: string; idx: number; hash: string; tolerance: Tolerance }>(
    tx,
    sql`SELECT v.task_id, v.idx, v.volunteer_id, v.result, v.trusted, v.hash, t.tolerance,
               encode(sha256(convert_to(v.result, 'UTF8')), 'hex') AS own_hash
        FROM (SELECT DISTINCT task_id, idx FROM ${itemTable}) x
        JOIN tasks t ON t.id = x.task_id AND t.tolerance IS NOT NULL
        JOIN chunk_state cs ON cs.task_id = x.task_id AND cs.idx = x.idx AND cs.status = 'voting'
        JOIN votes v ON v.task_id = x.task_id AND v.idx = x.idx AND v.counted
        ORDER BY v.task_id, v.idx, NOT v.trusted, v.created_at, v.volunteer_id`,
  );
  if (rows.length === 0) return;
  const moved: { task_id: string; idx: number; volunteer_id: string; hash: string }[] = [];
  for (let start = 0; start < rows.length; ) {
    let end = start;
    while (end < rows.length && rows[end]!.task_id === rows[start]!.task_id && rows[end]!.idx === rows[start]!.idx) end++;
    const chunk = rows.slice(start, end);
    const sides = sidesWithin(chunk, chunk[0]!.tolerance);
    for (const vote of chunk) {
      const hash = sides.get(vote.volunteer_id)!;
      if (hash !== vote.hash) moved.push({ task_id: vote.task_id, idx: vote.idx, volunteer_id: vote.volunteer_id, hash });
    }
    start = end;
  }
  if (moved.length === 0) return;
  await tx.execute(sql`
    UPDATE votes v SET hash = m.hash
    FROM json_to_recordset(${JSON.stringify(moved)}::json) AS m(task_id uuid, idx int, volunteer_id uuid, hash text)
    WHERE v.task_id = m.task_id AND v.idx = m.idx AND v.volunteer_id = m.volunteer_id`);
}
