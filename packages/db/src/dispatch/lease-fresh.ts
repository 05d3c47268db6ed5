// The hot lease statement (docs/architecture.md, "Dispatch"): pending retries as one-chunk
// leases, or else one block cut from the first unlocked stripe. One round trip a block.
import { type SQL, sql } from "drizzle-orm";
import { type Db, ShapedStatement } from "../db.ts";
import { noneReported } from "../sql/report-masks.ts";
import { checkpointOf, type DeadlineTerms, deadlineAfter, deadlineTermsOf, type LeaseBlockRow, latestAfter, stillRunning, storedInputs } from "./lease-sql.ts";
import type { Candidate, LeaseRequest } from "./lease-types.ts";

/**
 * Retries (one-chunk leases) one statement hands out at most: after a mass expiry a big
 * buffer would otherwise be cut into thousands of lease rows in one go.
 */
const maxRetriesPerStatement = 256;

type FreshValues = {
  task: string;
  volunteer: string;
  want: number;
  retries: number;
  ahead: number;
  key: string | null;
  source: string | null;
  stripe: number;
  timeoutMs: number;
  perRoundMs: number;
  threads: number;
  cpuPercent: number;
  graceMs: number;
  silentMs: number | null;
  heldAhead: number;
};

/**
 * The statement's eight shapes: stored inputs or a range's, skipping locked stripes or
 * waiting for one, with or without a silence bound on the deadline. Each is built once.
 */
const shapes = new Map<string, ShapedStatement<FreshValues>>();

/**
 * One round trip: pending retries become one-chunk leases (a retry keeps its own row, see
 * submit-blocks.ts), or else a block of fresh chunks is cut from the first unlocked stripe
 * (preferring the volunteer's own, so concurrent volunteers start on different rows). A
 * reduce level's stripe (a negative number) gives one chunk a block: a reduce chunk's input
 * is up to 256 results. See `deadlineAfter` for deadlines.
 */
export function leaseFromTask(db: Db, task: Candidate, want: number, ahead: number, request: LeaseRequest, locking: "skip-locked" | "wait"): Promise<LeaseBlockRow[]> {
  const terms = deadlineTermsOf(task, request);
  const shape = `${task.input_kind === "range" ? "range" : "stored"} ${locking} ${terms.silentMs === null ? "" : "silent"}`;
  let statement = shapes.get(shape);
  if (!statement) shapes.set(shape, (statement = freshStatement(task.input_kind, locking, terms.silentMs !== null)));
  return statement.rows<LeaseBlockRow>(db, {
    ...terms,
    task: task.id,
    volunteer: request.volunteerId,
    want,
    retries: Math.min(want, maxRetriesPerStatement),
    // `ahead`: chunks this request already holds, which the volunteer runs before these.
    ahead,
    key: request.idempotencyKey ?? null,
    source: request.source ?? null,
    stripe: stripeHint(request.volunteerId),
  });
}

function freshStatement(inputKind: string, locking: "skip-locked" | "wait", silent: boolean): ShapedStatement<FreshValues> {
  return new ShapedStatement<FreshValues>((v) => {
    const terms: DeadlineTerms = {
      timeoutMs: v("timeoutMs"),
      perRoundMs: v("perRoundMs"),
      threads: v("threads"),
      cpuPercent: v("cpuPercent"),
      graceMs: v("graceMs"),
      silentMs: silent ? v("silentMs") : null,
      heldAhead: v("heldAhead"),
    };
    const deadline = (n: SQL) => deadlineAfter(terms, sql`${n} + ${v("ahead")}::int`);
    const latest = (n: SQL) => latestAfter(terms, sql`${n} + ${v("ahead")}::int`);
    return sql`WITH retry AS (
          SELECT idx FROM chunk_state
          WHERE task_id = ${v("task")} AND status = 'pending' AND ${stillRunning(v("task"))}
          ORDER BY idx LIMIT ${v("retries")} FOR UPDATE SKIP LOCKED
        ), retry_count AS (
          SELECT count(*)::int AS n FROM retry
        ), retry_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, reported, deadline, request_key, source, latest)
          SELECT ${v("task")}, ${v("volunteer")}, idx, 1, B'0', ${deadline(sql`(SELECT n FROM retry_count)`)}, ${v("key")},
                 ${v("source")}::text, ${latest(sql`(SELECT n FROM retry_count)`)}
          FROM retry ORDER BY idx
          RETURNING id, first_idx, n, deadline
        ), retry_marked AS (
          UPDATE chunk_state cs SET status = 'leased', lease_id = rl.id
          FROM retry_leases rl WHERE cs.task_id = ${v("task")} AND cs.idx = rl.first_idx
        ), stripe AS (
          SELECT stripe, next_idx, end_idx FROM stripes
          WHERE task_id = ${v("task")} AND next_idx < end_idx AND (SELECT n FROM retry_count) = 0 AND ${stillRunning(v("task"))}
          ORDER BY stripe < ${v("stripe")}, stripe
          LIMIT 1 FOR UPDATE ${locking === "wait" ? sql`` : sql`SKIP LOCKED`}
        ), advanced AS (
          UPDATE stripes s SET next_idx = least(stripe.end_idx, stripe.next_idx + CASE WHEN stripe.stripe < 0 THEN 1 ELSE ${v("want")}::int END)
          FROM stripe WHERE s.task_id = ${v("task")} AND s.stripe = stripe.stripe
          RETURNING stripe.next_idx AS first_idx, s.next_idx - stripe.next_idx AS n
        ), fresh_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, reported, deadline, request_key, source, latest)
          SELECT ${v("task")}, ${v("volunteer")}, first_idx, n, ${noneReported(sql`n`)}, ${deadline(sql`advanced.n`)}, ${v("key")},
                 ${v("source")}::text, ${latest(sql`advanced.n`)}
          FROM advanced
          RETURNING id, first_idx, n, deadline
        ), granted AS (
          SELECT * FROM retry_leases UNION ALL SELECT * FROM fresh_leases
        )
        -- One row per lease row, not per chunk: a block costs the API one row to read.
        SELECT g.id AS lease_id, g.first_idx, g.n, g.deadline, ${storedInputs(inputKind, v("task"), sql`g`)} AS inputs, ${checkpointOf(sql`${v("task")}::uuid`, sql`g`)} AS checkpoint
        FROM granted g
        ORDER BY g.first_idx`;
  });
}

/** A stable small number per volunteer, to spread volunteers over a task's stripes. */
function stripeHint(volunteerId: string): number {
  let hash = 0;
  for (let i = 0; i < volunteerId.length; i++) hash = (hash * 31 + volunteerId.charCodeAt(i)) | 0;
  return Math.abs(hash) % 16;
}
