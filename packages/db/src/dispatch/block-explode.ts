// A block under vote as a whole (block-votes.ts) turned into per-chunk state, and blocks decided
// whole taken back by a ban (docs/architecture.md, "Replication, trust and reduce").
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { addToTaskCounters } from "../sql/counters.ts";
import { runTasksAgain } from "../sql/run-again.ts";

/**
 * Turns block (task, firstIdx) under vote into per-chunk state, as if its copies had always
 * been voted chunk by chunk: a `chunk_state` 'voting' row a chunk with the block's needed,
 * copies out and votes in, and a `votes` row per chunk of each block vote (the element's text,
 * its own hash, the copy's CPU time and claim split evenly). The block's rows go. The caller
 * holds, or takes here, the block's state row lock. Used when a copy disagrees, is reported in
 * parts, or reports errors.
 */
export async function explodeBlock(tx: Db, taskId: string, firstIdx: number): Promise<void> {
  await tx.execute(sql`
    WITH bs AS (
      DELETE FROM block_state WHERE task_id = ${taskId} AND first_idx = ${firstIdx} RETURNING *
    ), bv AS (
      DELETE FROM block_votes WHERE task_id = ${taskId} AND first_idx = ${firstIdx} RETURNING *
    ), states AS (
      INSERT INTO chunk_state (task_id, idx, status, needed, copies_out, votes_in)
      SELECT bs.task_id, bs.first_idx + o, 'voting', bs.needed, bs.copies_out, bs.votes_in
      FROM bs CROSS JOIN LATERAL generate_series(0, bs.n - 1) AS o ORDER BY 2
      ON CONFLICT (task_id, idx) DO NOTHING
    )
    INSERT INTO votes (task_id, idx, volunteer_id, user_id, hash, result, cpu_ms, claim, trusted, counted, created_at)
    SELECT bv.task_id, bv.first_idx + (e.ord - 1)::int, bv.volunteer_id, bv.user_id,
           encode(sha256(convert_to(e.value::text, 'UTF8')), 'hex'), e.value::text, bv.cpu_ms / bv.n, bv.claim / bv.n, bv.trusted, bv.counted, bv.created_at
    FROM bv CROSS JOIN LATERAL json_array_elements(bv.results::json) WITH ORDINALITY AS e(value, ord)
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING`);
}

/**
 * Before chunks of extra-copy leases go chunk by chunk (a part of a block, errors): the blocks
 * those leases copy that are still under vote as a whole become per-chunk state first, so the
 * per-chunk statements find each chunk's vote and count this copy in it.
 */
export async function explodeBlocksOfLeases(db: Db, leaseRowIds: readonly number[]): Promise<void> {
  if (leaseRowIds.length === 0) return;
  const ids = JSON.stringify([...new Set(leaseRowIds)].sort((a, b) => a - b));
  const blocks = await queryRows<{ task_id: string; first_idx: number }>(
    db,
    sql`SELECT bs.task_id, bs.first_idx FROM leases l
        JOIN block_state bs ON bs.task_id = l.task_id AND bs.first_idx = l.first_idx AND bs.n = l.n
        WHERE l.id IN (SELECT value::bigint FROM json_array_elements_text(${ids}::json)) AND l.copy > 0`,
  );
  if (blocks.length === 0) return;
  await db.transaction(async (tx) => {
    for (const block of blocks.sort((a, b) => (a.task_id === b.task_id ? a.first_idx - b.first_idx : a.task_id < b.task_id ? -1 : 1))) {
      const locked = await queryRows(tx, sql`SELECT 1 FROM block_state WHERE task_id = ${block.task_id} AND first_idx = ${block.first_idx} FOR UPDATE`);
      if (locked.length > 0) await explodeBlock(tx, block.task_id, block.first_idx);
    }
  });
}

/**
 * A ban (reputation.ts): the banned volunteers' block votes stop counting, and every block
 * decided whole that no longer has a quorum of counted votes with a trusted one among them
 * goes back to voting as a block, wanting one more copy; its result row goes, the task's
 * done and CPU time step back, and a task done or failed runs again. Blocks still under vote
 * count a vote fewer. Returns the tasks whose blocks were reopened (the caller resets their
 * reduce trees).
 */
export async function reopenBannedBlocks(tx: Db, volunteerIdsJson: string): Promise<string[]> {
  await tx.execute(sql`
    WITH uncounted AS (
      UPDATE block_votes SET counted = false
      WHERE volunteer_id IN (SELECT value::uuid FROM json_array_elements_text(${volunteerIdsJson}::json)) AND counted
      RETURNING task_id, first_idx
    )
    UPDATE block_state bs SET votes_in = greatest(bs.votes_in - u.n, 0)
    FROM (SELECT task_id, first_idx, count(*)::int AS n FROM uncounted GROUP BY task_id, first_idx) u
    WHERE bs.task_id = u.task_id AND bs.first_idx = u.first_idx`);
  const rows = await queryRows<{ task_id: string }>(
    tx,
    sql`WITH helped AS (
          SELECT DISTINCT bv.task_id, bv.first_idx FROM block_votes bv
          JOIN results r ON r.task_id = bv.task_id AND r.idx = bv.first_idx AND r.n = bv.n
          WHERE bv.volunteer_id IN (SELECT value::uuid FROM json_array_elements_text(${volunteerIdsJson}::json))
        ), standing AS (
          SELECT h.*, t.quorum,
                 (SELECT count(*) FROM block_votes v WHERE v.task_id = h.task_id AND v.first_idx = h.first_idx AND v.counted) AS agreeing,
                 (SELECT coalesce(bool_or(v.trusted), false) FROM block_votes v WHERE v.task_id = h.task_id AND v.first_idx = h.first_idx AND v.counted) AS vouched
          FROM helped h JOIN tasks t ON t.id = h.task_id
        ), fallen AS (
          DELETE FROM results r USING standing s, tasks t
          WHERE r.task_id = s.task_id AND r.idx = s.first_idx AND t.id = s.task_id AND (s.agreeing < s.quorum OR NOT s.vouched)
          RETURNING r.task_id, r.idx, r.n, r.cpu_ms, s.agreeing, t.total
        ), revoting AS (
          INSERT INTO block_state (task_id, first_idx, n, needed, copies_out, votes_in)
          SELECT task_id, idx, n, agreeing + 1, 0, agreeing FROM fallen ORDER BY task_id, idx
          ON CONFLICT DO NOTHING
        ), uncounted AS (
          ${addToTaskCounters(["done", "cpu_ms"], sql`SELECT task_id, 0, -sum(least(n, greatest(total - idx, 0))), -sum(cpu_ms) FROM fallen GROUP BY task_id ORDER BY task_id`)}
        ), running_again AS (
          ${runTasksAgain(sql`fallen`)}
        )
        SELECT DISTINCT task_id FROM fallen`,
  );
  return rows.map((row) => row.task_id);
}
