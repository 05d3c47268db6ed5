// Votes by the block (docs/architecture.md, "Replication, trust and reduce"): a copy of a
// replicated block reported whole, by the lease that still holds it and has reported none of
// it, is one `block_votes` row; the block's one `block_state` row counts its copies. Copies that
// all agree decide every chunk of the block at once, as one results row; a copy that disagrees
// anywhere (or a block reported in parts, or with errors) turns the block into per-chunk state
// (block-explode.ts) and is counted chunk by chunk (votes.ts), as every vote was before.
import { sql } from "drizzle-orm";
import { type Db, queryRows, retryOnDeadlockOrSerialization } from "../db.ts";
import { addToTaskCounters } from "../sql/counters.ts";
import { runMask } from "../sql/report-masks.ts";
import { explodeBlock } from "./block-explode.ts";
import { decidedBlock, leaseFacts, voteWhole } from "./block-vote-whole.ts";
import { promoteVoters } from "./reputation.ts";
import type { RunOfResults } from "./submit-chunks.ts";
import { agreeWithin, type Tolerance } from "./tolerance.ts";

/** A run covering its lease's whole block (n ≥ 2), of a replicated task. */
export type BlockVoteRun = RunOfResults;

type LeaseCheck = {
  id: string | number;
  copy: number;
  n: number;
  first_idx: number;
  open: boolean;
  task_id: string;
  replication: number;
  quorum: number;
  total: number;
  tolerance: Tolerance | null;
  trusted: boolean;
  banned: boolean;
  claim: string | number;
  hash: string;
};

type Voted = { hash: string; trusted: boolean; results?: string };

/**
 * Records each run as a block vote. Returns the results counted (chunks decided now), the runs
 * that must go chunk by chunk instead (their block was already turned into per-chunk state, or
 * is turned now because this copy disagrees), those whose lease no longer holds the whole
 * block unreported (`notOpen`: a late or repeated copy, a spot check's lone copy; nothing was
 * written for them), and the tasks with no fresh chunks left (they may be finished).
 */
export async function recordBlockVotes(
  db: Db,
  input: { volunteerId: string; userId: string | null; shard: number; runs: readonly BlockVoteRun[] },
): Promise<{ inserted: number; perChunk: BlockVoteRun[]; notOpen: BlockVoteRun[]; exhausted: Set<string> }> {
  const outcome = { inserted: 0, perChunk: [] as BlockVoteRun[], notOpen: [] as BlockVoteRun[], exhausted: new Set<string>() };
  for (const run of input.runs) {
    // The common case is one statement (block-vote-whole.ts); the rest one transaction, retried
    // alone: a retry of runs already committed would find their leases reported.
    const whole = await retryOnDeadlockOrSerialization(() => voteWhole(db, input, run));
    if (!whole.open) {
      outcome.notOpen.push(run);
      continue;
    }
    let got: number | "per-chunk";
    if (!whole.handled && whole.copy === 0) got = "per-chunk";
    else if (whole.handled) {
      got = whole.decided;
      if (whole.untrusted_winner) await promoteBlockVoters(db, run);
    } else got = await retryOnDeadlockOrSerialization(() => db.transaction((tx) => recordCopy(tx, input, run)));
    if (got === "per-chunk") outcome.perChunk.push(run);
    else outcome.inserted += got;
    // no fresh chunks left: deciding this block may have finished the task
    if (whole.exhausted) outcome.exhausted.add(run.taskId);
  }
  return outcome;
}

/** Probationers among a decided block's winners may have earned trust now. */
const promoteBlockVoters = (db: Db, run: BlockVoteRun) =>
  promoteVoters(db, sql`SELECT volunteer_id FROM block_votes WHERE task_id = ${run.taskId} AND first_idx = ${run.first} AND counted AND NOT trusted`);

async function recordCopy(tx: Db, input: { volunteerId: string; userId: string | null; shard: number }, run: BlockVoteRun): Promise<number | "per-chunk"> {
  const [lease] = await queryRows<LeaseCheck>(tx, leaseFacts(input, run));
  if (!lease?.open) return "per-chunk";
  const counted = !lease.banned;
  // The block's state, locked; then, in a new statement whose snapshot sees every vote
  // committed before the lock was ours, its votes: counted ones in the order sides take them
  // (trusted first, then by arrival), and whether this volunteer or user voted already.
  const locked = await queryRows(tx, sql`SELECT 1 FROM block_state WHERE task_id = ${run.taskId} AND first_idx = ${run.first} FOR UPDATE`);
  const [state] =
    locked.length === 0
      ? []
      : await queryRows<{ needed: number; votes: Voted[] | string; voted_before: boolean }>(
          tx,
          sql`SELECT bs.needed,
               coalesce((SELECT json_agg(json_build_object('trusted', v.trusted, 'hash', v.hash ${lease.tolerance ? sql`, 'results', v.results` : sql``})
                                         ORDER BY NOT v.trusted, v.created_at, v.volunteer_id)
                         FROM block_votes v WHERE v.task_id = bs.task_id AND v.first_idx = bs.first_idx AND v.counted), '[]') AS votes,
               EXISTS (SELECT 1 FROM block_votes v WHERE v.task_id = bs.task_id AND v.first_idx = bs.first_idx
                         AND (v.volunteer_id = ${input.volunteerId} OR v.user_id = ${input.userId})) AS voted_before
        FROM block_state bs WHERE bs.task_id = ${run.taskId} AND bs.first_idx = ${run.first} AND bs.n = ${run.count}`,
        );
  if (!state) {
    // Decided by the block already: a late copy changes nothing (its lease is marked reported).
    const decided = await queryRows<{ one: number }>(tx, sql`SELECT 1 AS one FROM results WHERE task_id = ${run.taskId} AND idx = ${run.first} AND n = ${run.count}`);
    if (decided.length === 0) return "per-chunk";
    await markReported(tx, run);
    return 0;
  }
  if (state.voted_before) {
    // Voted on this block before (the lease statement never hands such a copy): no vote, its slot frees.
    await markReported(tx, run, sql`, freed AS (UPDATE block_state SET copies_out = greatest(copies_out - 1, 0) WHERE task_id = ${run.taskId} AND first_idx = ${run.first})`);
    return 0;
  }
  const votes = (typeof state.votes === "string" ? JSON.parse(state.votes) : state.votes) as Voted[];
  if (counted && !agrees(votes, lease, run.resultsJson)) {
    await explodeBlock(tx, run.taskId, run.first);
    return "per-chunk";
  }
  const agreeing = votes.length + 1;
  const decides = counted && (lease.trusted || votes.some((v) => v.trusted)) && agreeing >= lease.quorum;
  // A quorum of untrusted copies agrees: it waits for a trusted one, one copy out at a time.
  const needed = counted && !decides && agreeing >= lease.quorum && state.needed <= agreeing ? agreeing + 1 : state.needed;
  await tx.execute(sql`
    WITH voted AS (
      INSERT INTO block_votes (task_id, first_idx, n, volunteer_id, user_id, hash, results, cpu_ms, claim, trusted, counted)
      VALUES (${run.taskId}, ${run.first}, ${run.count}, ${input.volunteerId}, ${input.userId}, ${lease.hash}, ${run.resultsJson}::text,
              ${lease.claim}, ${lease.claim}, ${lease.trusted}, ${counted})
      ON CONFLICT DO NOTHING RETURNING n
    ), state AS (
      UPDATE block_state SET copies_out = greatest(copies_out - 1, 0), votes_in = votes_in + (SELECT count(*) FROM voted WHERE ${counted})::int, needed = ${needed}
      WHERE task_id = ${run.taskId} AND first_idx = ${run.first}
    ), received AS (
      ${addToTaskCounters(["copies"], sql`SELECT ${run.taskId}::uuid, ${input.shard}, sum(n) FROM voted WHERE ${counted} HAVING count(*) > 0`)}
    )
    UPDATE leases SET reported = ${runMask(sql`n`, sql`0`, sql`n`)} WHERE id = ${run.leaseRowId}`);
  if (!decides) return 0;
  const decided = await decideBlock(tx, input.shard, run.taskId, run.first);
  // Probationers among the winners may have earned trust now (none when every voter is trusted).
  if (!lease.trusted || votes.some((v) => !v.trusted)) await promoteBlockVoters(tx, run);
  return decided;
}

/** Marks the run's whole lease reported; `also` adds CTEs to the statement. */
async function markReported(tx: Db, run: BlockVoteRun, also = sql``): Promise<void> {
  await tx.execute(sql`WITH marked AS (UPDATE leases SET reported = ${runMask(sql`n`, sql`0`, sql`n`)} WHERE id = ${run.leaseRowId})${also} SELECT 1`);
}

/**
 * Whether a new copy agrees with every counted vote of its block: the same hash of the same
 * canonical array text, or under the task's tolerance, element by element with the side's
 * leader (its first trusted copy, else its first copy; the new copy leads when it is the
 * first trusted one). Counted votes of a block all agree with each other (a disagreeing copy
 * turns the block into per-chunk state), so one leader stands for all.
 */
function agrees(votes: readonly Voted[], lease: LeaseCheck, resultsJson: string): boolean {
  if (votes.length === 0) return true;
  if (!lease.tolerance) return votes.every((v) => v.hash === lease.hash);
  const newLeads = lease.trusted && !votes[0]!.trusted;
  const leader = parseArray(newLeads ? resultsJson : votes[0]!.results!);
  const others = newLeads ? votes.map((v) => v.results!) : [...votes.slice(1).map((v) => v.results!), resultsJson];
  if (!leader) return false;
  return others.every((text) => {
    const value = parseArray(text);
    return value !== null && value.length === leader.length && value.every((element, k) => agreeWithin(leader[k], element, lease.tolerance!));
  });
}

function parseArray(text: string): unknown[] | null {
  try {
    const value = JSON.parse(text) as unknown;
    return Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * Decides every chunk of the block at once from its counted votes (which all agree, and
 * include a trusted one; `decidedBlock` in block-vote-whole.ts) and moves the task's counters.
 * Returns the chunks decided.
 */
async function decideBlock(tx: Db, shard: number, taskId: string, firstIdx: number): Promise<number> {
  const rows = await queryRows<{ done: number }>(
    tx,
    sql`WITH decides AS (
          SELECT task_id, first_idx, n FROM block_state WHERE task_id = ${taskId} AND first_idx = ${firstIdx}
        ), no_vote AS (
          SELECT * FROM block_votes WHERE false
        ), ${decidedBlock(sql`decides`, sql`no_vote`)}, counted AS (
          ${addToTaskCounters(["done", "cpu_ms", "credit"], sql`SELECT task_id, ${shard}, own_chunks, cpu_ms, (SELECT coalesce(sum(claim), 0) FROM winners) FROM inserted`)}
        )
        SELECT coalesce(sum(n), 0)::int AS done FROM inserted`,
  );
  return rows[0]?.done ?? 0;
}
