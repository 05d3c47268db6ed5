import { MAX_BLOCK_CHUNKS, MAX_LEASE_CHUNKS } from "@crowdcompute/contract/limits";
import { sql } from "drizzle-orm";
import { type Db, preparedRows, queryRows, retryOnDeadlockOrSerialization } from "../db.ts";
import { someClear } from "../sql/report-masks.ts";
import { rangeChunkInput } from "../tasks/tasks.ts";
import { candidateTasks, rotateServedCreators } from "./candidates.ts";
import { dispatchCacheOf } from "./dispatch-cache.ts";
import { leaseCopies } from "./lease-copies.ts";
import { leaseFromTask } from "./lease-fresh.ts";
import { checkpointOf, type LeaseBlockRow, measuredAfter, storedInputsOf } from "./lease-sql.ts";
import type { Candidate, GrantedBlock, LeaseRequest } from "./lease-types.ts";
import { reduceInput } from "./reduce.ts";
import { claimRequestKey } from "./request-keys.ts";
import { recordChunkErrors } from "./submit-errors.ts";

// Leasing (docs/architecture.md, "Dispatch"): which tasks, how many chunks of each, and the
// blocks as the API serves them. Its two hot statements have a file each (lease-fresh.ts,
// lease-copies.ts); the bounds on what one volunteer holds are lease-bounds.ts.

/** Inputs one request carries at most, by the task's mean input size (stored inputs may be large). */
const maxLeaseInputBytes = 8 * 1024 * 1024;
/** Chunks per thread a task gets while its mean chunk time is unknown: new tasks start small. */
const unmeasuredChunksPerThread = 2;
/** Statements one request may spend on one task's blocks (blocks end where stripes do). */
const maxRoundsPerTask = 32;
/**
 * A share is never less than this: a small task's last chunks go to whoever asks, not one at
 * a time to each volunteer that asked in the last 10 s (some of which may be gone).
 */
const minShare = 32;
/**
 * While fresh chunks are left, a replicated task's extra copies are looked for at most this
 * often a process once a look found none (docs/architecture.md, "Replication, trust and
 * reduce"): at spotCheck 0.1 most blocks never want one, and the look is a round trip before
 * every fresh lease. A lease that finds no fresh chunk always looks.
 */
const noCopiesLookEveryMs = 100;
/** What a task's share bound needs: how many other parties ask for work, what this party holds of each task. */
export type Sharing = { others: number; heldByTask: ReadonlyMap<string, number> };

/**
 * The most chunks of `task` one party (an anonymous source's volunteers together, or an
 * account's volunteer) may hold while `others` other parties ask for work: an equal share of
 * its open chunks, but at least `minShare`, or no bound when it asks alone. Extra copies of a replicated task's chunks are outside it (a copy takes a first
 * copy's block whole).
 */
function taskShare(task: Pick<Candidate, "total" | "measured">, others: number): number {
  if (others <= 0) return Number.POSITIVE_INFINITY;
  return Math.max(minShare, Math.ceil(Math.max(0, task.total - task.measured) / (others + 1)));
}

/**
 * Hands a volunteer blocks of consecutive chunks, retries first, then fresh blocks cut from
 * a stripe (`FOR UPDATE SKIP LOCKED`, so concurrent lessees never wait on each other). A
 * request's chunks are sized to its buffer (`blockBudget`). Expired leases are reclaimed by
 * the caller first (`reclaimExpiredLeases`).
 */
export async function leaseBlocks(db: Db, request: LeaseRequest): Promise<GrantedBlock[]> {
  if (request.idempotencyKey && !request.keyClaimed && !(await claimRequestKey(db, request.volunteerId, request.idempotencyKey))) {
    return leasesOfRequest(db, request.volunteerId, request.idempotencyKey);
  }
  return leaseUnclaimed(db, request, null);
}

/** `leaseBlocks` once the request's key (if any) is claimed; `sharing` bounds each task's share. */
export async function leaseUnclaimed(db: Db, request: LeaseRequest, sharing: Sharing | null): Promise<GrantedBlock[]> {
  const dispatchCache = dispatchCacheOf(db);
  const candidates = await candidateTasks(db, dispatchCache, request);
  let leased = await leaseFromCandidates(db, candidates.tasks, request, sharing);
  // A cached list may name tasks that have since ended while others started: look again.
  if (leased.length === 0 && candidates.fromCache) leased = await leaseFromCandidates(db, (await candidateTasks(db, dispatchCache, request, { fresh: true })).tasks, request, sharing);
  const served = new Set(leased.map((block) => block.ownerId));
  rotateServedCreators(dispatchCache, request, served);
  const { markedAt } = dispatchCache;
  const due = [...served].filter((owner) => (markedAt.get(owner) ?? 0) < Date.now() - markEveryMs);
  if (due.length > 0) {
    for (const owner of due) markedAt.set(owner, Date.now());
    await markServed(db, due);
  }
  return leased;
}

/**
 * How many chunks of a task fill `bufferMs` of a volunteer's threads (BOINC's work buffer):
 * bufferMs · threads · cpuPercent/100 ÷ the task's mean chunk time, from 1 for chunks longer
 * than the buffer to `MAX_LEASE_CHUNKS` for sub-millisecond ones, and never more than 8 MiB of
 * inputs by the task's mean input size. A task with fewer than 8 results starts at 2 chunks
 * a thread and grows as its timing is learned.
 */
function blockBudget(task: Pick<Candidate, "mean_chunk_ms" | "measured" | "mean_input_bytes" | "total">, request: Pick<LeaseRequest, "bufferMs" | "threads" | "cpuPercent" | "waiting">): number {
  const byBytes = task.mean_input_bytes > 0 ? Math.max(1, Math.floor(maxLeaseInputBytes / task.mean_input_bytes)) : MAX_LEASE_CHUNKS;
  if (request.bufferMs === undefined) return Math.min(MAX_LEASE_CHUNKS, byBytes);
  if (task.measured < measuredAfter || task.mean_chunk_ms === null) {
    // Volunteers waiting here when a task starts each get a share of its open chunks at once
    // (at least one), instead of the first few taking 2 a thread and the rest none.
    const share = request.waiting ? Math.max(1, Math.ceil(Math.max(0, task.total - task.measured) / (request.waiting + 1))) : Number.POSITIVE_INFINITY;
    return Math.min(byBytes, request.threads * unmeasuredChunksPerThread, share);
  }
  const lentMs = request.bufferMs * request.threads * ((request.cpuPercent ?? 100) / 100);
  // A chunk never costs less than 10 µs here: the sandbox's own overhead per chunk is more.
  return Math.max(1, Math.min(MAX_LEASE_CHUNKS, byBytes, Math.ceil(lentMs / Math.max(task.mean_chunk_ms, 0.01))));
}

async function leaseFromCandidates(db: Db, candidates: Candidate[], request: LeaseRequest, sharing: Sharing | null): Promise<GrantedBlock[]> {
  const { noCopiesAt } = dispatchCacheOf(db);
  /** Extra copies of `task` up to `take` chunks; a look that finds none is noted (`noCopiesAt`). */
  const copiesOf = async (task: Candidate, take: number, ahead: number, count: number) => {
    const copies = await retryOnDeadlockOrSerialization(() => leaseCopies(db, task, take, ahead, { ...request, max: request.max - count }));
    if (copies.length === 0) noCopiesAt.set(task.id, Date.now());
    else noCopiesAt.delete(task.id);
    return copies;
  };
  const leased: GrantedBlock[] = [];
  let count = 0;
  // The share of the buffer still to fill: a task's blocks use up n / its budget of it.
  let bufferLeft = 1;
  for (const task of candidates) {
    const budget = blockBudget(task, request);
    const want = Math.min(request.max - count, Math.ceil(budget * bufferLeft));
    if (want <= 0 || bufferLeft <= 0) break;
    // First copies of this task the volunteer may still take (its share: `taskShare`).
    let shareLeft = sharing ? taskShare(task, sharing.others) - (sharing.heldByTask.get(task.id) ?? 0) : Number.POSITIVE_INFINITY;
    const got: LeaseBlockRow[] = [];
    // One block per statement: a statement that cut several blocks at once (a generate_series
    // over the stripe's run) took ~600 ms under 8 concurrent lessees on Postgres, against
    // ~0.2 ms for a block each. Blocks end where stripes do, so allow rounds for short ones.
    for (let round = 0; round < maxRoundsPerTask && want - sum(got) > 0; round++) {
      const ahead = sum(got);
      const take = Math.min(MAX_BLOCK_CHUNKS, want - ahead);
      // Extra copies of replicated chunks first: they hold back a quorum already under way.
      // A copy of a block voted whole is taken whole, up to what the request may still take.
      const lookedAt = noCopiesAt.get(task.id);
      const looked = task.replication > 1 && (lookedAt === undefined || lookedAt < Date.now() - noCopiesLookEveryMs);
      const copies = looked ? await copiesOf(task, take, ahead, count) : [];
      let blocks = copies;
      if (copies.length === 0) {
        const fresh = Math.min(take, shareLeft);
        if (fresh > 0) {
          blocks = await retryOnDeadlockOrSerialization(() => leaseFromTask(db, task, fresh, ahead, request, "skip-locked"));
          // Every open stripe was locked by other lessees' statements (near a task's end, when few
          // stripes are left): wait for one rather than send the volunteer away with no work.
          if (blocks.length === 0 && got.length === 0) blocks = await retryOnDeadlockOrSerialization(() => leaseFromTask(db, task, fresh, ahead, request, "wait"));
          shareLeft -= sum(blocks);
        }
        // No fresh chunk for this request: copies are looked for now, however recent the last look.
        if (blocks.length === 0 && task.replication > 1 && !looked) blocks = await copiesOf(task, take, ahead, count);
        if (blocks.length === 0 && fresh <= 0) break;
      }
      if (blocks.length === 0) break;
      got.push(...blocks);
    }
    const n = sum(got);
    count += n;
    bufferLeft -= n / budget;
    for (const block of got) {
      const built = await leasedBlock(db, task, block);
      if (built) leased.push(built);
    }
  }
  return leased;
}

const sum = (blocks: LeaseBlockRow[]) => blocks.reduce((total, block) => total + block.n, 0);

type TaskOfLease = Pick<Candidate, "id" | "owner_id" | "input_kind" | "range" | "timeout_ms" | "memory_mb" | "code_sha256" | "wasm_sha256" | "requires" | "total" | "replication" | "spot_check">;

/**
 * The block as the API serves it, inputs built. A reduce chunk's input is its children's
 * results; one that cannot be built (say a result Postgres cannot parse) fails that chunk's
 * attempt and leaves the block out, so no lease request of anyone else fails with it.
 */
async function leasedBlock(db: Db, task: TaskOfLease, block: LeaseBlockRow): Promise<GrantedBlock | null> {
  const firstIdx = block.first_idx;
  const entry = firstIdx >= task.total ? "reduce" : "work";
  let inputsJson: string;
  if (entry === "reduce") {
    try {
      const inputs: string[] = [];
      for (let o = 0; o < block.n; o++) inputs.push(await reduceInput(db, task.id, task.total, firstIdx + o));
      inputsJson = `[${inputs.join(",")}]`;
    } catch (error) {
      const leaseRowId = Number(block.lease_id);
      const message = `the server could not build this reduce chunk's input: ${(error as Error).message}`.slice(0, 4096);
      const errors = Array.from({ length: block.n }, (_, o) => ({ leaseRowId, taskId: task.id, index: firstIdx + o, kind: "throw", message, cpuMs: 0 }));
      await retryOnDeadlockOrSerialization(() => recordChunkErrors(db, 0, errors));
      return null;
    }
  } else if (task.input_kind === "range") {
    let text = "[";
    for (let o = 0; o < block.n; o++) {
      const { start, end, step } = rangeChunkInput(task.range!, firstIdx + o);
      text += `${o === 0 ? "" : ","}{"start":${start},"end":${end},"step":${step}}`;
    }
    inputsJson = `${text}]`;
  } else {
    inputsJson = block.inputs ?? "[]";
  }
  return {
    leaseRowId: Number(block.lease_id),
    taskId: task.id,
    ownerId: task.owner_id,
    firstIdx,
    n: block.n,
    copy: block.copy ?? 0,
    inputsJson,
    entry,
    deadline: new Date(block.deadline),
    codeSha256: task.code_sha256,
    wasmSha256: task.wasm_sha256,
    timeoutMs: task.timeout_ms,
    memoryMb: task.memory_mb,
    requires: task.requires,
    replication: task.replication,
    spotCheck: task.spot_check,
    reportedOffsets: typeof block.reported_offsets === "string" ? (JSON.parse(block.reported_offsets) as number[]) : (block.reported_offsets ?? []),
    checkpointJson: block.checkpoint ?? null,
  };
}

/**
 * The blocks an earlier request with this key got that still hold an unreported chunk, whole
 * (an offset reported again changes nothing). A repeat that arrives while the first request
 * is still leasing gets what that request has leased so far (usually nothing): its client
 * lost that answer anyway.
 */
export async function leasesOfRequest(db: Db, volunteerId: string, key: string): Promise<GrantedBlock[]> {
  const rows = await queryRows<LeaseBlockRow & TaskOfLease>(
    db,
    sql`SELECT l.id AS lease_id, l.first_idx, l.n, l.deadline, l.copy,
               t.id, t.owner_id, t.input_kind, t.range, t.timeout_ms, t.memory_mb, t.code_sha256, t.wasm_sha256, t.requires, t.total, t.replication, t.spot_check,
               ${storedInputsOf(sql`t.id`, sql`l`)} AS inputs, ${checkpointOf(sql`t.id`, sql`l`)} AS checkpoint,
               array_to_json(ARRAY(SELECT o FROM generate_series(0, l.n - 1) AS o WHERE get_bit(l.reported, o) = 1 ORDER BY o)) AS reported_offsets
        FROM leases l
        JOIN tasks t ON t.id = l.task_id AND t.status IN ('running', 'paused')
        WHERE l.volunteer_id = ${volunteerId} AND l.request_key = ${key} AND NOT l.reclaimed AND ${someClear(sql`l.reported`)}
        ORDER BY l.id`,
  );
  const leased: GrantedBlock[] = [];
  for (const row of rows) {
    const built = await leasedBlock(db, row, row);
    if (built) leased.push(built);
  }
  return leased;
}

// This process skips marking a creator it marked moments ago (the dispatch cache's `markedAt`):
// the row would not change (markServed's own 100 ms guard), and a round trip per lease
// request costs throughput.
const markEveryMs = 100;

/** Moves the creators to the back of the queue; skips rows touched in the last 100 ms. */
async function markServed(db: Db, ownerIds: string[]): Promise<void> {
  await preparedRows(
    db,
    sql`
    INSERT INTO creator_turns AS ct (owner_id, last_served_at)
    SELECT value::uuid, clock_timestamp() FROM json_array_elements_text(${JSON.stringify(ownerIds.sort())}::json)
    ON CONFLICT (owner_id) DO UPDATE SET last_served_at = excluded.last_served_at
      WHERE ct.last_served_at < excluded.last_served_at - interval '100 milliseconds'`,
  );
}
