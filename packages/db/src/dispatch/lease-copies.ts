// The lease statements for extra copies (docs/architecture.md, "Replication, trust and
// reduce"): of a block voted whole, or of chunks under vote, one round trip per block.

import { MAX_BLOCK_CHUNKS } from "@crowdcompute/contract/limits";
import { sql } from "drizzle-orm";
import { type Db, preparedRows, queryRows } from "../db.ts";
import { noneReported } from "../sql/report-masks.ts";
import { deadlineAfter, deadlineTermsOf, type LeaseBlockRow, latestAfter, stillRunning, storedInputs } from "./lease-sql.ts";
import type { Candidate, LeaseRequest } from "./lease-types.ts";

/**
 * Extra copies: of a block under vote as a whole first (`leaseBlockCopy`), else of chunks
 * whose quorum is under way ('voting') chunk by chunk, as blocks of
 * consecutive such chunks (so a replicated task's copies are as cheap to hand out as its
 * first ones), never to a volunteer (or user) that already voted on a chunk or holds a copy.
 */
export async function leaseCopies(db: Db, task: Candidate, want: number, ahead: number, request: LeaseRequest): Promise<LeaseBlockRow[]> {
  const rows = await leaseBlockCopy(db, task, ahead, request);
  const block = rows.filter((row) => row.lease_id !== null);
  if (block.length > 0) return block;
  // The per-chunk statement only when some chunk under vote wants a copy (the block statement
  // looked): a replicated task whose copies agree has none, and a round trip a lease is saved.
  return rows[0]?.chunk_copies_wanted ? leaseChunkCopies(db, task, want, ahead, request) : [];
}

/**
 * One round trip: an extra copy of a block under vote as a whole (block-votes.ts), the first
 * that wants one, whole (its first copy's boundaries), as one lease row; never to a volunteer
 * or user that voted on it or holds a copy of it. A block larger than what the request may
 * still take (`request.max`, less `ahead`) is left for another.
 */
function leaseBlockCopy(db: Db, task: Candidate, ahead: number, request: LeaseRequest): Promise<(LeaseBlockRow & { chunk_copies_wanted: boolean })[]> {
  const terms = deadlineTermsOf(task, request);
  // Prepared, as the fresh lease statement is: every row found by key or a partial index.
  return preparedRows<LeaseBlockRow & { chunk_copies_wanted: boolean }>(
    db,
    sql`WITH picked AS (
          SELECT bs.first_idx, bs.n FROM block_state bs
          WHERE bs.task_id = ${task.id} AND bs.copies_out + bs.votes_in < bs.needed AND bs.n <= ${request.max - ahead}::int AND ${stillRunning(task.id)}
            AND NOT EXISTS (SELECT 1 FROM block_votes v WHERE v.task_id = bs.task_id AND v.first_idx = bs.first_idx
                            AND (v.volunteer_id = ${request.volunteerId} OR v.user_id = ${request.userId}))
            AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = bs.task_id AND l.first_idx = bs.first_idx AND l.copy > 0
                            AND l.volunteer_id = ${request.volunteerId} AND NOT l.reclaimed)
          ORDER BY bs.first_idx LIMIT 1 FOR UPDATE SKIP LOCKED
        ), copy_lease AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, copy, reported, deadline, request_key, source, latest)
          SELECT ${task.id}, ${request.volunteerId}, first_idx, n, 1, ${noneReported(sql`n`)},
                 ${deadlineAfter(terms, sql`picked.n + ${ahead}::int`)}, ${request.idempotencyKey ?? null},
                 ${request.source ?? null}, ${latestAfter(terms, sql`picked.n + ${ahead}::int`)}
          FROM picked
          RETURNING id, first_idx, n, deadline
        ), counted AS (
          UPDATE block_state bs SET copies_out = bs.copies_out + 1
          FROM picked p WHERE bs.task_id = ${task.id} AND bs.first_idx = p.first_idx
        )
        -- one row even when no block wants a copy: whether a chunk under vote does
        SELECT l.id AS lease_id, l.first_idx, l.n, l.deadline, 1 AS copy, ${storedInputs(task.input_kind, task.id, sql`l`)} AS inputs,
               EXISTS (SELECT 1 FROM chunk_state cs WHERE cs.task_id = ${task.id} AND cs.status = 'voting' AND cs.copies_out + cs.votes_in < cs.needed) AS chunk_copies_wanted
        FROM (SELECT 1) one LEFT JOIN copy_lease l ON true`,
  );
}

/** Extra copies of chunks under vote one by one, as runs of consecutive such chunks. */
function leaseChunkCopies(db: Db, task: Candidate, want: number, ahead: number, request: LeaseRequest): Promise<LeaseBlockRow[]> {
  const terms = deadlineTermsOf(task, request);
  return queryRows<LeaseBlockRow>(
    db,
    sql`WITH picked AS (
          -- The chunks wanting a copy, from their partial index (a scan of every voting chunk
          -- with a count of its votes each took ~2 s a statement late in a 1M-chunk task).
          SELECT cs.idx FROM chunk_state cs
          WHERE cs.task_id = ${task.id} AND cs.status = 'voting' AND cs.copies_out + cs.votes_in < cs.needed AND ${stillRunning(task.id)}
            AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.task_id = cs.task_id AND v.idx = cs.idx
                            AND (v.volunteer_id = ${request.volunteerId} OR v.user_id = ${request.userId}))
            -- a copy this volunteer holds: a block starting at most a block's length before
            AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = cs.task_id
                            AND l.first_idx <= cs.idx AND l.first_idx > cs.idx - ${MAX_BLOCK_CHUNKS}::int AND l.first_idx + l.n > cs.idx
                            AND l.copy > 0 AND l.volunteer_id = ${request.volunteerId} AND NOT l.reclaimed
                            AND get_bit(l.reported, cs.idx - l.first_idx) = 0)
          ORDER BY cs.idx LIMIT ${want} FOR UPDATE SKIP LOCKED
        ), runs AS (
          -- consecutive indexes share idx - row_number(): each run becomes one block
          SELECT min(idx) AS first_idx, count(*)::int AS n
          FROM (SELECT idx, idx - row_number() OVER (ORDER BY idx) AS run FROM picked) p
          GROUP BY run
        ), copy_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, copy, reported, deadline, request_key, source, latest)
          SELECT ${task.id}, ${request.volunteerId}, first_idx, n, 1, ${noneReported(sql`n`)},
                 ${deadlineAfter(terms, sql`(SELECT count(*) FROM picked) + ${ahead}::int`)}, ${request.idempotencyKey ?? null},
                 ${request.source ?? null}, ${latestAfter(terms, sql`(SELECT count(*) FROM picked) + ${ahead}::int`)}
          FROM runs ORDER BY first_idx
          RETURNING id, first_idx, n, deadline
        ), counted AS (
          UPDATE chunk_state cs SET copies_out = cs.copies_out + 1
          FROM picked p WHERE cs.task_id = ${task.id} AND cs.idx = p.idx
        )
        SELECT l.id AS lease_id, l.first_idx, l.n, l.deadline, 1 AS copy, ${storedInputs(task.input_kind, task.id, sql`l`)} AS inputs
        FROM copy_leases l
        ORDER BY l.first_idx`,
  );
}
