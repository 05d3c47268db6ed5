// What the lease statements share (lease-fresh.ts, lease-copies.ts, lease.ts): the row a
// statement returns for a block, its inputs and checkpoint as Postgres builds them, and a
// block's deadlines (docs/architecture.md, "Dispatch" and "Bounds on what one volunteer holds").
import { type SQL, sql } from "drizzle-orm";
import type { Candidate, LeaseRequest } from "./lease-types.ts";

/** Results a task needs before its mean chunk time is trusted for sizing and deadlines. */
export const measuredAfter = 8;

/**
 * A lease row granted: its block of chunks and, unless the task is a range, their stored
 * inputs in order as one JSON array text, built by Postgres so the API splices it into its
 * answer unparsed.
 */
export type LeaseBlockRow = {
  lease_id: string | number;
  first_idx: number;
  n: number;
  deadline: Date | string;
  copy?: number;
  inputs?: string | null;
  reported_offsets?: string | number[];
  checkpoint?: string | null;
};

/**
 * The checkpoint an earlier lease of a retried chunk left, for lease row `block`: a retry is
 * a one-chunk block, so only those probe `chunk_live` (one key, whatever the plan); a fresh
 * block's chunks were never leased before and have none.
 */
export const checkpointOf = (taskId: SQL, block: SQL) => sql`(SELECT cl.checkpoint FROM chunk_live cl WHERE ${block}.n = 1 AND cl.task_id = ${taskId} AND cl.idx = ${block}.first_idx)`;

/**
 * The stored inputs of lease row `block` of task `taskId` as a JSON array text. One range
 * scan of the primary key per block: a scalar subquery, so whatever plan a prepared statement
 * settles on, it never joins (a generic plan once hash-joined all 1M inputs of a task: 1 s per
 * lease). Inputs are dense over [0, total), so the array has exactly n elements.
 */
export const storedInputsOf = (taskId: SQL, block: SQL) =>
  sql`(SELECT '[' || string_agg(ci.input, ',' ORDER BY ci.idx) || ']' FROM chunk_inputs ci
       WHERE ci.task_id = ${taskId} AND ci.idx >= ${block}.first_idx AND ci.idx < ${block}.first_idx + ${block}.n)`;

/**
 * Ranges store no inputs: their inputs are computed, so the scan is skipped. Two statement
 * texts, not a parameter: a CASE on a parameter made Postgres plan the lease statement anew
 * for every request (its custom plans looked cheaper than the generic one).
 */
export const storedInputs = (inputKind: string, taskId: unknown, block: SQL) => (inputKind === "range" ? sql`NULL::text` : storedInputsOf(sql`${taskId}::uuid`, block));

/** The candidate list may be 100 ms old: each lease statement checks the task still runs. */
export const stillRunning = (taskId: unknown) => sql`EXISTS (SELECT 1 FROM tasks WHERE id = ${taskId} AND status = 'running')`;

/**
 * What a block's deadlines are computed from (`deadlineAfter`, `latestAfter`): values, or a
 * shaped statement's placeholders (lease-fresh.ts). `silentMs` null: no silence bound.
 */
export type DeadlineTerms = { timeoutMs: unknown; perRoundMs: unknown; threads: unknown; cpuPercent: unknown; graceMs: unknown; silentMs: unknown; heldAhead: unknown };

/** The deadline terms of a lease of `task` for `request`, as values. */
export function deadlineTermsOf(task: Candidate, request: LeaseRequest) {
  return {
    timeoutMs: task.timeout_ms,
    perRoundMs: task.measured >= measuredAfter && task.mean_chunk_ms !== null ? Math.min(task.timeout_ms, 4 * task.mean_chunk_ms) : task.timeout_ms,
    threads: request.threads,
    cpuPercent: request.cpuPercent ?? 100,
    graceMs: request.graceMs,
    silentMs: request.silentMs ?? null,
    heldAhead: request.heldAhead ?? 0,
  };
}

/**
 * A block's deadline, for the `n` chunks the volunteer has in hand up to its end: R = ⌈n /
 * threads⌉ rounds of at most timeoutMs each, or, once the task's mean chunk time is known,
 * one timeoutMs plus 4 × the mean per round when that is sooner (a volunteer that vanishes
 * with a buffer of 16k chunks of 1 ms then loses it in about a minute, not in days);
 * stretched by 100 / cpuPercent, plus grace; and never more than `silentMs` away. Heartbeats
 * extend every block the volunteer holds.
 */
export const deadlineAfter = (t: DeadlineTerms, n: SQL) => {
  // At most `silentMs` off when given: a volunteer that never beats loses the block that soon
  // (docs/architecture.md, "Dispatch"); its beats carry the block on up to `latestAfter`.
  const silent = t.silentMs === null ? sql`` : sql`, ${t.silentMs}::float8`;
  return sql`now() + make_interval(secs => least((least(${t.timeoutMs}::float8 * ceil((${n})::numeric / ${t.threads}::int)::float8,
                                                  ${t.timeoutMs}::float8 + ${t.perRoundMs}::float8 * ceil((${n})::numeric / ${t.threads}::int)::float8)
                                            * 100 / ${t.cpuPercent}::int + ${t.graceMs}::bigint)${silent}) / 1000.0)`;
};

/**
 * The latest deadline heartbeats may extend a block to (docs/architecture.md, "Bounds on what
 * one volunteer holds"): what its `n` chunks in hand need at the volunteer's threads, with the
 * chunks it held before the request (which it runs first), ⌈n / threads⌉ rounds of timeoutMs
 * stretched by 100 / cpuPercent, plus grace, from the lease; never later, however long the
 * volunteer keeps beating.
 */
export const latestAfter = (t: DeadlineTerms, n: SQL) =>
  sql`now() + make_interval(secs => (${t.timeoutMs}::float8 * ceil((${n} + ${t.heldAhead}::int)::numeric / ${t.threads}::int)::float8
                                     * 100 / ${t.cpuPercent}::int + ${t.graceMs}::bigint) / 1000.0)`;
