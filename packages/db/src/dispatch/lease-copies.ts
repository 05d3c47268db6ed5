// The lease statement for extra copies of chunks under vote (docs/architecture.md, "Replication,
// trust and reduce"): one round trip per block run.

import { MAX_BLOCK_CHUNKS } from "@crowdcompute/contract/limits";
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { noneReported } from "../sql/report-masks.ts";
import { deadlineAfter, type LeaseBlockRow, latestAfter, stillRunning, storedInputs } from "./lease-sql.ts";
import type { Candidate, LeaseRequest } from "./lease-types.ts";

/**
 * One round trip: extra copies of chunks whose quorum is under way ('voting'), as blocks of
 * consecutive such chunks (so a replicated task's copies are as cheap to hand out as its
 * first ones), never to a volunteer (or user) that already voted on a chunk or holds a copy.
 */
export function leaseCopies(db: Db, task: Candidate, want: number, ahead: number, request: LeaseRequest): Promise<LeaseBlockRow[]> {
  return queryRows<LeaseBlockRow>(
    db,
    sql`WITH picked AS (
          -- The chunks wanting a copy, from their partial index (a scan of every voting chunk
          -- with a count of its votes each took ~2 s a statement late in a 1M-chunk task).
          SELECT cs.idx FROM chunk_state cs
          WHERE cs.task_id = ${task.id} AND cs.status = 'voting' AND cs.copies_out + cs.votes_in < cs.needed AND ${stillRunning(task)}
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
                 ${deadlineAfter(task, request, sql`(SELECT count(*) FROM picked) + ${ahead}::int`)}, ${request.idempotencyKey ?? null},
                 ${request.source ?? null}, ${latestAfter(task, request, sql`(SELECT count(*) FROM picked) + ${ahead}::int`)}
          FROM runs ORDER BY first_idx
          RETURNING id, first_idx, n, deadline
        ), counted AS (
          UPDATE chunk_state cs SET copies_out = cs.copies_out + 1
          FROM picked p WHERE cs.task_id = ${task.id} AND cs.idx = p.idx
        )
        SELECT l.id AS lease_id, l.first_idx, l.n, l.deadline, 1 AS copy, ${storedInputs(task, sql`l`)} AS inputs
        FROM copy_leases l
        ORDER BY l.first_idx`,
  );
}
