import { type Db, retryOnDeadlockOrSerialization } from "../db.ts";
import { counterShardOf } from "../sql/counters.ts";
import { completeFinishedTasks } from "../tasks/tasks.ts";
import { explodeBlocksOfLeases } from "./block-explode.ts";
import { recordBlockVotes } from "./block-votes.ts";
import { type ConsoleReport, recordChunkConsole } from "./chunk-live.ts";
import { dispatchCacheOf } from "./dispatch-cache.ts";
import { insertResultRuns, type ResultRun } from "./submit-blocks.ts";
import { type ChunkError, insertChunkResults, type RejectionReason, type RunOfResults } from "./submit-chunks.ts";
import { recordChunkErrors } from "./submit-errors.ts";
import { recordVotes, type Vote } from "./votes.ts";

export type { ResultRun } from "./submit-blocks.ts";
export type { ChunkError, ChunkRef, RejectionReason } from "./submit-chunks.ts";

export interface SubmitOutcome {
  /** Chunks whose results counted now; a chunk reported again is accepted but not counted. */
  inserted: number;
  /** Chunks refused, as runs of consecutive indexes of one lease with one reason. */
  rejected: { leaseRowId: number; taskId: string; index: number; count: number; reason: RejectionReason }[];
}

/**
 * Records a volunteer's results (runs of consecutive chunks of one lease) and errors.
 * Exactly once: a run its lease still holds becomes one row (submit-blocks.ts); anything else
 * goes chunk by chunk (submit-chunks.ts), where a result is `INSERT … ON CONFLICT DO NOTHING
 * RETURNING`; only rows really inserted move counters or credit. A late result for an
 * expired lease still counts while the chunk is not final. Console output of the reported
 * chunks is kept for those whose outcome counted (chunk-live.ts). Counters are added to the
 * volunteer's shard (`counterShardOf`) unless `shard` names another.
 */
export async function submitResults(
  db: Db,
  submitted: { volunteerId: string; userId?: string | null; shard?: number; runs: ResultRun[]; errors: ChunkError[]; consoles?: readonly ConsoleReport[] },
): Promise<SubmitOutcome> {
  const input = { ...submitted, shard: submitted.shard ?? counterShardOf(submitted.volunteerId) };
  const outcome: SubmitOutcome = { inserted: 0, rejected: [] };
  const touched = new Set<string>();
  let runs = input.runs.filter((run) => run.count > 0);
  const perChunk: RunOfResults[] = [];
  // Whole blocks of replicated leases (the caller's hint): a vote by the block in one statement
  // each; what that statement finds is not one goes the usual way below.
  const hinted = runs.filter(isHintedBlock);
  // Copies of a task may be wanted once a vote of it is recorded or a chunk errs: the next lease
  // here looks (lease.ts, `noCopiesAt`). A trusted copy accepted alone (spotCheck) wants none.
  const { noCopiesAt } = dispatchCacheOf(db);
  for (const error of input.errors) noCopiesAt.delete(error.taskId);
  if (hinted.length > 0) {
    const voted = await recordBlockVotes(db, { volunteerId: input.volunteerId, userId: input.userId ?? null, shard: input.shard, runs: hinted.map(runOfResults) });
    outcome.inserted += voted.inserted;
    for (const taskId of voted.exhausted) touched.add(taskId);
    perChunk.push(...voted.perChunk);
    const notOpen = new Set(voted.notOpen.map((run) => run.leaseRowId));
    for (const run of hinted) if (!notOpen.has(run.leaseRowId)) noCopiesAt.delete(run.taskId);
    runs = runs.filter((run) => !isHintedBlock(run) || notOpen.has(run.leaseRowId));
  }
  if (runs.length > 0) {
    const rows = await retryOnDeadlockOrSerialization(() => insertResultRuns(db, input.volunteerId, input.shard, runs));
    const blockVotes: RunOfResults[] = [];
    for (const row of rows) {
      if (row.kind === "task") {
        outcome.inserted += row.inserted;
        if (row.exhausted) touched.add(row.task_id);
        continue;
      }
      const run = runs[row.item]!;
      const first = run.firstIdx + run.offset;
      const chunks = runOfResults(run);
      if (row.reason) outcome.rejected.push({ leaseRowId: run.leaseRowId, taskId: run.taskId, index: first, count: run.count, reason: row.reason });
      else if (row.block_vote) blockVotes.push(chunks);
      else perChunk.push(chunks);
      if (!row.reason) noCopiesAt.delete(run.taskId);
    }
    if (blockVotes.length > 0) {
      const voted = await recordBlockVotes(db, { volunteerId: input.volunteerId, userId: input.userId ?? null, shard: input.shard, runs: blockVotes });
      // A task a block decided may be finished only once its stripes are spent: the block
      // statement's task row said so (`exhausted`), and put it in `touched` then.
      outcome.inserted += voted.inserted;
      perChunk.push(...voted.perChunk, ...voted.notOpen);
    }
  }
  if (perChunk.length > 0) {
    // A part of a block copied whole, or a copy that disagrees: its block goes per chunk first.
    await retryOnDeadlockOrSerialization(() =>
      explodeBlocksOfLeases(
        db,
        perChunk.map((run) => run.leaseRowId),
      ),
    );
    await submitChunkByChunk(db, input, perChunk, outcome, touched);
  }
  if (input.errors.length > 0) {
    await retryOnDeadlockOrSerialization(() =>
      explodeBlocksOfLeases(
        db,
        input.errors.map((error) => error.leaseRowId),
      ),
    );
    const rows = await retryOnDeadlockOrSerialization(() => recordChunkErrors(db, input.shard, input.errors));
    for (const row of rows) {
      if (row.status === "failed") touched.add(row.task_id);
      if (row.reason) outcome.rejected.push({ leaseRowId: Number(row.lease_id), taskId: row.task_id, index: row.idx, count: 1, reason: row.reason });
    }
  }
  // Console output before the task can end: whoever saw the task end finds every chunk's
  // lines already committed (the task's event stream drains them up to that point).
  if (input.consoles && input.consoles.length > 0) await recordChunkConsole(db, { volunteerId: input.volunteerId, reports: input.consoles });
  await completeFinishedTasks(db, [...touched]);
  return outcome;
}

async function submitChunkByChunk(db: Db, input: { volunteerId: string; userId?: string | null; shard: number }, runs: RunOfResults[], outcome: SubmitOutcome, touched: Set<string>): Promise<void> {
  const rows = await retryOnDeadlockOrSerialization(() => insertChunkResults(db, input.volunteerId, input.shard, runs));
  const votes: Vote[] = [];
  for (const row of rows) {
    if (row.lease_id === null) {
      outcome.inserted += row.inserted;
      if (row.exhausted) touched.add(row.task_id);
    } else if (row.reason) {
      outcome.rejected.push({ leaseRowId: Number(row.lease_id), taskId: row.task_id, index: row.idx, count: 1, reason: row.reason });
    } else {
      votes.push({ leaseRowId: Number(row.lease_id), taskId: row.task_id, index: row.idx, result: row.result!, cpuMs: Number(row.cpu_ms), copy: row.copy, firstReport: row.first_report });
    }
  }
  if (votes.length > 0) {
    const counted = await retryOnDeadlockOrSerialization(() => recordVotes(db, { volunteerId: input.volunteerId, userId: input.userId ?? null, shard: input.shard, votes }));
    outcome.inserted += counted.won;
    for (const taskId of counted.finishedChunksOf) touched.add(taskId);
  }
}

/** The caller's hint that `run` is a replicated lease's whole block (two chunks or more): tried as a vote by the block first. */
const isHintedBlock = (run: ResultRun): boolean => run.wholeReplicatedBlock === true && run.offset === 0 && run.count >= 2;

/** A run as the vote and per-chunk statements take it: `first` is its first chunk's task index. */
const runOfResults = (run: ResultRun): RunOfResults => ({
  leaseRowId: run.leaseRowId,
  taskId: run.taskId,
  first: run.firstIdx + run.offset,
  count: run.count,
  resultsJson: run.resultsJson,
  cpuMs: run.cpuMs,
});
