import { MAX_BLOCK_CHUNKS, MAX_LEASE_CHUNKS } from "@crowdcompute/contract/limits";
import { type SQL, sql } from "drizzle-orm";
import { type Db, dispatcherOf, hotRows, queryRows, withRetry } from "../db.ts";
import { noneReported, someClear } from "../sql/report-masks.ts";
import { rangeChunkInput } from "../tasks/tasks.ts";
import { type Candidate, candidateTasks, rotateServedCreators } from "./candidates.ts";
import { heldChunks } from "./held.ts";
import { reduceInput } from "./reduce.ts";
import { claimRequestKey } from "./request-keys.ts";
import { recordChunkErrors } from "./submit-errors.ts";

export interface LeaseRequest {
  volunteerId: string;
  /** The user the volunteer belongs to, for allow-lists. */
  userId: string | null;
  /** The most chunks to hand out, over all blocks. */
  max: number;
  /**
   * How long the volunteer wants to be kept busy (ms). With it, each task's share is sized
   * from its measured mean chunk time (see `blockBudget`); without it, `max` chunks are cut.
   */
  bufferMs?: number;
  threads: number;
  /**
   * The share of each thread's time the volunteer lets chunks use, 1..100 (default 100): a
   * throttled volunteer takes proportionally longer over a batch, so its deadline does too.
   */
  cpuPercent?: number;
  webgpu: boolean;
  excludeTasks: readonly string[];
  excludeCreators: readonly string[];
  /** Added to every lease deadline (30 s by default). */
  graceMs: number;
  /** The request's `Idempotency-Key`: a repeat with the same key gets the same leases back. */
  idempotencyKey?: string | null;
  /** The network source of an anonymous volunteer (null for an account's): its leases count toward the source's bound. */
  source?: string | null;
  /** What the volunteer may hold and claim (`leaseWithinBounds`); none when absent (the db's own tests and benches). */
  bounds?: LeaseBounds;
  /** Chunks the volunteer held before this request (set by `leaseWithinBounds`): it runs them first, so a block's `latest` counts them. */
  heldAhead?: number;
}

/**
 * Bounds on what one volunteer holds and claims (docs/architecture.md, "Bounds on what one
 * volunteer holds"). The API sets them from its environment.
 */
export interface LeaseBounds {
  /** Unreported chunks of live leases one volunteer may hold. At least one whole block of the largest size. */
  perVolunteer: number;
  /** The same for all anonymous volunteers of one network source together. */
  perSource: number;
  /** Threads and buffer a request may claim: more counts as this much. */
  maxThreads: number;
  maxBufferMs: number;
}

/** Why a request got less than it asked for, when a bound was the reason. */
export type LeaseBound = "volunteer" | "source" | "busy";

export interface LeaseOutcome {
  blocks: LeasedBlock[];
  /** The bound that held this request back (it got fewer chunks, or none), or null. */
  bounded: LeaseBound | null;
}

/** A block of consecutive chunks, one lease row: what the volunteer gets one signed id for. */
export interface LeasedBlock {
  leaseRowId: number;
  taskId: string;
  /** The task's creator (for turn taking). */
  ownerId: string;
  firstIdx: number;
  n: number;
  copy: number;
  /** The chunks' inputs as one JSON array text, in index order (element k is chunk firstIdx + k). */
  inputsJson: string;
  deadline: Date;
  codeSha256: string;
  wasmSha256: string | null;
  /** The task's per-chunk limit, which the volunteer's sandbox enforces. */
  timeoutMs: number;
  /** The task's memory budget per worker (MiB), which the volunteer's sandbox enforces. */
  memoryMb: number;
  /** What the task needs of the volunteer (e.g. WebGPU, so the sandbox offers `ctx.gpu`). */
  requires: { webgpu?: boolean };
  /** Which export runs: `work`, or `reduce` for the reduce chunks past the task's own. */
  entry: "work" | "reduce";
  /** Copies of each chunk the task runs: with more than one, results are compared by their canonical JSON. */
  replication: number;
  /** Offsets already reported (only a repeated Idempotency-Key gets a block with some). */
  reportedOffsets: number[];
  /**
   * A retry (a one-chunk block) of a chunk an earlier lease checkpointed: the state's JSON text,
   * for the volunteer to resume from; null otherwise.
   */
  checkpointJson: string | null;
}

/** The most chunks one lease row holds. */
export const maxBlockChunks = MAX_BLOCK_CHUNKS;
/** The most chunks one request is given, whatever its buffer asks. */
export const maxLeaseChunks = MAX_LEASE_CHUNKS;
/** Inputs one request carries at most, by the task's mean input size (stored inputs may be large). */
const maxLeaseInputBytes = 8 * 1024 * 1024;
/** Chunks per thread a task gets while its mean chunk time is unknown: new tasks start small. */
const unmeasuredChunksPerThread = 2;
/** Results a task needs before its mean chunk time is trusted for sizing. */
const measuredAfter = 8;
/**
 * Retries (one-chunk leases) one statement hands out at most: after a mass expiry a big
 * buffer would otherwise be cut into thousands of lease rows in one go.
 */
const maxRetriesPerStatement = 256;
/** Statements one request may spend on one task's blocks (blocks end where stripes do). */
const maxRoundsPerTask = 32;
/** Other volunteers that asked for work within this long share a task's open chunks with the asker. */
const sharingWindowMs = 10_000;
/**
 * A share is never less than this: a small task's last chunks go to whoever asks, not one at
 * a time to each volunteer that asked in the last 10 s (some of which may be gone).
 */
const minShare = 32;
/** A volunteer's lease requests running or waiting in one process; more get nothing at once. */
const maxQueuedPerVolunteer = 4;
/** The same for all anonymous volunteers of one network source (a household or office behind one address). */
const maxQueuedPerSource = 64;

/**
 * `leaseBlocks` within `request.bounds` (docs/architecture.md, "Bounds on what one volunteer
 * holds"): the request's threads and buffer are clamped; a volunteer's requests run one at a
 * time in this process, each after reading what the volunteer (and, if anonymous, its source)
 * holds; it gets at most what is left under both bounds, and of each task at most its party's
 * share of the open chunks while other parties ask for work (`taskShare`). Beyond a bound the
 * answer has fewer blocks or none, and says which bound.
 */
export async function leaseWithinBounds(db: Db, request: LeaseRequest): Promise<LeaseOutcome> {
  const bounds = request.bounds;
  if (!bounds) return { blocks: await leaseBlocks(db, request), bounded: null };
  const dispatcher = dispatcherOf(db);
  // A task is shared among parties: an anonymous network source (whatever identities it
  // mints) or an account's volunteer.
  const party = request.source == null ? `volunteer:${request.volunteerId}` : `source:${request.source}`;
  const others = dispatcher.othersAsking(party, sharingWindowMs);
  const clamped: LeaseRequest = {
    ...request,
    threads: Math.max(1, Math.min(request.threads, bounds.maxThreads)),
    ...(request.bufferMs === undefined ? {} : { bufferMs: Math.min(request.bufferMs, bounds.maxBufferMs) }),
  };
  // A volunteer's requests run one at a time here; an anonymous source's too while other
  // parties ask for work (its share of a task is read, then taken). What a volunteer and a
  // source hold is known from the last read plus what this process granted and reserved since
  // (`Dispatcher.heldEstimate`): read again only when a request might pass a bound, or needs
  // its share. A source's volunteers reserve before they lease, so they cannot each see room.
  const source = clamped.source ?? null;
  const inTurn = (run: () => Promise<LeaseOutcome>) => () => (source === null || others === 0 ? run() : (dispatcher.oneAtATime(`source:${source}`, maxQueuedPerSource, run) ?? busy()));
  const turn = dispatcher.oneAtATime(
    request.volunteerId,
    maxQueuedPerVolunteer,
    inTurn(async (): Promise<LeaseOutcome> => {
      if (clamped.idempotencyKey && !(await claimRequestKey(db, clamped.volunteerId, clamped.idempotencyKey))) {
        return { blocks: await leasesOfRequest(db, clamped.volunteerId, clamped.idempotencyKey), bounded: null };
      }
      const mine = dispatcher.heldEstimate(`volunteer:${clamped.volunteerId}`);
      const ours = source === null ? null : dispatcher.heldEstimate(`source:${source}`);
      const roomOf = () => ({
        byVolunteer: bounds.perVolunteer - mine.known - mine.reserved,
        bySource: ours === null ? Number.POSITIVE_INFINITY : bounds.perSource - ours.known - ours.reserved,
      });
      let sharing: Sharing | null = null;
      let { byVolunteer, bySource } = roomOf();
      if (others > 0 || byVolunteer < clamped.max || bySource < clamped.max) {
        const held = await heldChunks(db, { volunteerId: clamped.volunteerId, source });
        mine.known = held.volunteer;
        if (ours) ours.known = held.source;
        if (others > 0) sharing = { others, heldByTask: source === null ? held.byTask : held.sourceByTask };
        ({ byVolunteer, bySource } = roomOf());
      }
      const room = Math.min(byVolunteer, bySource);
      const bound: LeaseBound = bySource < byVolunteer ? "source" : "volunteer";
      if (room <= 0) return { blocks: [], bounded: bound };
      const max = Math.min(clamped.max, room);
      mine.reserved += max;
      if (ours) ours.reserved += max;
      let blocks: LeasedBlock[] = [];
      try {
        blocks = await leaseUnclaimed(db, { ...clamped, max, heldAhead: mine.known }, sharing);
      } finally {
        const got = blocks.reduce((n, block) => n + block.n, 0);
        mine.reserved -= max;
        mine.known += got;
        if (ours) {
          ours.reserved -= max;
          ours.known += got;
        }
      }
      const got = blocks.reduce((n, block) => n + block.n, 0);
      return { blocks, bounded: max < clamped.max && got >= max ? bound : null };
    }),
  );
  return (await turn) ?? busy();
}

const busy = async (): Promise<LeaseOutcome> => ({ blocks: [], bounded: "busy" });

/** What a task's share bound needs: how many other parties ask for work, what this party holds of each task. */
type Sharing = { others: number; heldByTask: ReadonlyMap<string, number> };

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
export async function leaseBlocks(db: Db, request: LeaseRequest): Promise<LeasedBlock[]> {
  if (request.idempotencyKey && !(await claimRequestKey(db, request.volunteerId, request.idempotencyKey))) {
    return leasesOfRequest(db, request.volunteerId, request.idempotencyKey);
  }
  return leaseUnclaimed(db, request, null);
}

/** `leaseBlocks` once the request's key (if any) is claimed; `sharing` bounds each task's share. */
async function leaseUnclaimed(db: Db, request: LeaseRequest, sharing: Sharing | null): Promise<LeasedBlock[]> {
  const dispatcher = dispatcherOf(db);
  const candidates = await candidateTasks(db, dispatcher, request);
  let leased = await leaseFromCandidates(db, candidates.tasks, request, sharing);
  // A cached list may name tasks that have since ended while others started: look again.
  if (leased.length === 0 && candidates.fromCache) leased = await leaseFromCandidates(db, (await candidateTasks(db, dispatcher, request, { fresh: true })).tasks, request, sharing);
  const served = new Set(leased.map((block) => block.ownerId));
  rotateServedCreators(dispatcher, request, served);
  const { markedAt } = dispatcher;
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
 * than the buffer to `maxLeaseChunks` for sub-millisecond ones, and never more than 8 MiB of
 * inputs by the task's mean input size. A task with fewer than 8 results starts at 2 chunks
 * a thread and grows as its timing is learned.
 */
function blockBudget(task: Pick<Candidate, "mean_chunk_ms" | "measured" | "mean_input_bytes">, request: Pick<LeaseRequest, "bufferMs" | "threads" | "cpuPercent">): number {
  const byBytes = task.mean_input_bytes > 0 ? Math.max(1, Math.floor(maxLeaseInputBytes / task.mean_input_bytes)) : maxLeaseChunks;
  if (request.bufferMs === undefined) return Math.min(maxLeaseChunks, byBytes);
  if (task.measured < measuredAfter || task.mean_chunk_ms === null) return Math.min(byBytes, request.threads * unmeasuredChunksPerThread);
  const lentMs = request.bufferMs * request.threads * ((request.cpuPercent ?? 100) / 100);
  // A chunk never costs less than 10 µs here: the sandbox's own overhead per chunk is more.
  return Math.max(1, Math.min(maxLeaseChunks, byBytes, Math.ceil(lentMs / Math.max(task.mean_chunk_ms, 0.01))));
}

async function leaseFromCandidates(db: Db, candidates: Candidate[], request: LeaseRequest, sharing: Sharing | null): Promise<LeasedBlock[]> {
  const leased: LeasedBlock[] = [];
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
      const take = Math.min(maxBlockChunks, want - ahead);
      // Extra copies of replicated chunks first: they hold back a quorum already under way.
      const copies = task.replication > 1 ? await withRetry(() => leaseCopies(db, task, take, ahead, request)) : [];
      let blocks = copies;
      if (copies.length === 0) {
        const fresh = Math.min(take, shareLeft);
        if (fresh <= 0) break;
        blocks = await withRetry(() => leaseFromTask(db, task, fresh, ahead, request, "skip-locked"));
        // Every open stripe was locked by other lessees' statements (near a task's end, when few
        // stripes are left): wait for one rather than send the volunteer away with no work.
        if (blocks.length === 0 && got.length === 0) blocks = await withRetry(() => leaseFromTask(db, task, fresh, ahead, request, "wait"));
        shareLeft -= sum(blocks);
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

type TaskOfLease = Pick<Candidate, "id" | "owner_id" | "input_kind" | "range" | "timeout_ms" | "memory_mb" | "code_sha256" | "wasm_sha256" | "requires" | "total" | "replication">;

/**
 * The block as the API serves it, inputs built. A reduce chunk's input is its children's
 * results; one that cannot be built (say a result Postgres cannot parse) fails that chunk's
 * attempt and leaves the block out, so no lease request of anyone else fails with it.
 */
async function leasedBlock(db: Db, task: TaskOfLease, block: LeaseBlockRow): Promise<LeasedBlock | null> {
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
      await withRetry(() => recordChunkErrors(db, 0, errors));
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
async function leasesOfRequest(db: Db, volunteerId: string, key: string): Promise<LeasedBlock[]> {
  const rows = await queryRows<LeaseBlockRow & TaskOfLease>(
    db,
    sql`SELECT l.id AS lease_id, l.first_idx, l.n, l.deadline, l.copy,
               t.id, t.owner_id, t.input_kind, t.range, t.timeout_ms, t.memory_mb, t.code_sha256, t.wasm_sha256, t.requires, t.total, t.replication,
               ${storedInputsOf(sql`t.id`, sql`l`)} AS inputs, ${checkpointOf(sql`t.id`, sql`l`)} AS checkpoint,
               array_to_json(ARRAY(SELECT o FROM generate_series(0, l.n - 1) AS o WHERE get_bit(l.reported, o) = 1 ORDER BY o)) AS reported_offsets
        FROM leases l
        JOIN tasks t ON t.id = l.task_id AND t.status IN ('running', 'paused')
        WHERE l.volunteer_id = ${volunteerId} AND l.request_key = ${key} AND NOT l.reclaimed AND ${someClear(sql`l.reported`)}
        ORDER BY l.id`,
  );
  const leased: LeasedBlock[] = [];
  for (const row of rows) {
    const built = await leasedBlock(db, row, row);
    if (built) leased.push(built);
  }
  return leased;
}

// This process skips marking a creator it marked moments ago (the dispatcher's `markedAt`):
// the row would not change (markServed's own 100 ms guard), and a round trip per lease
// request costs throughput.
const markEveryMs = 100;

/** Moves the creators to the back of the queue; skips rows touched in the last 100 ms. */
async function markServed(db: Db, ownerIds: string[]): Promise<void> {
  await hotRows(
    db,
    sql`
    INSERT INTO creator_turns AS ct (owner_id, last_served_at)
    SELECT value::uuid, clock_timestamp() FROM json_array_elements_text(${JSON.stringify(ownerIds.sort())}::json)
    ON CONFLICT (owner_id) DO UPDATE SET last_served_at = excluded.last_served_at
      WHERE ct.last_served_at < excluded.last_served_at - interval '100 milliseconds'`,
  );
}

/**
 * A lease row granted: its block of chunks and, unless the task is a range, their stored
 * inputs in order as one JSON array text, built by Postgres so the API splices it into its
 * answer unparsed.
 */
type LeaseBlockRow = {
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
const checkpointOf = (taskId: SQL, block: SQL) => sql`(SELECT cl.checkpoint FROM chunk_live cl WHERE ${block}.n = 1 AND cl.task_id = ${taskId} AND cl.idx = ${block}.first_idx)`;

/**
 * The stored inputs of lease row `block` of task `taskId` as a JSON array text. One range
 * scan of the primary key per block: a scalar subquery, so whatever plan a prepared statement
 * settles on, it never joins (a generic plan once hash-joined all 1M inputs of a task: 1 s per
 * lease). Inputs are dense over [0, total), so the array has exactly n elements.
 */
const storedInputsOf = (taskId: SQL, block: SQL) =>
  sql`(SELECT '[' || string_agg(ci.input, ',' ORDER BY ci.idx) || ']' FROM chunk_inputs ci
       WHERE ci.task_id = ${taskId} AND ci.idx >= ${block}.first_idx AND ci.idx < ${block}.first_idx + ${block}.n)`;

/**
 * Ranges store no inputs: their inputs are computed, so the scan is skipped. Two statement
 * texts, not a parameter: a CASE on a parameter made Postgres plan the lease statement anew
 * for every request (its custom plans looked cheaper than the generic one).
 */
const storedInputs = (task: Candidate, block: SQL) => (task.input_kind === "range" ? sql`NULL::text` : storedInputsOf(sql`${task.id}::uuid`, block));

/** The candidate list may be 100 ms old: each lease statement checks the task still runs. */
const stillRunning = (task: Candidate) => sql`EXISTS (SELECT 1 FROM tasks WHERE id = ${task.id} AND status = 'running')`;

/**
 * A block's deadline, for the `n` chunks the volunteer has in hand up to its end: R = ⌈n /
 * threads⌉ rounds of at most timeoutMs each, or, once the task's mean chunk time is known,
 * one timeoutMs plus 4 × the mean per round when that is sooner (a volunteer that vanishes
 * with a buffer of 16k chunks of 1 ms then loses it in about a minute, not in days);
 * stretched by 100 / cpuPercent, plus grace. Heartbeats extend every block the volunteer holds.
 */
const deadlineAfter = (task: Candidate, request: LeaseRequest, n: SQL) => {
  const perRoundMs = task.measured >= measuredAfter && task.mean_chunk_ms !== null ? Math.min(task.timeout_ms, 4 * task.mean_chunk_ms) : task.timeout_ms;
  return sql`now() + make_interval(secs => (least(${task.timeout_ms}::float8 * ceil((${n})::numeric / ${request.threads}::int)::float8,
                                                  ${task.timeout_ms}::float8 + ${perRoundMs}::float8 * ceil((${n})::numeric / ${request.threads}::int)::float8)
                                            * 100 / ${request.cpuPercent ?? 100}::int + ${request.graceMs}::bigint) / 1000.0)`;
};

/**
 * The latest deadline heartbeats may extend a block to (docs/architecture.md, "Bounds on what
 * one volunteer holds"): what its `n` chunks in hand need at the volunteer's threads, with the
 * chunks it held before the request (which it runs first), ⌈n / threads⌉ rounds of timeoutMs
 * stretched by 100 / cpuPercent, plus grace, from the lease; never later, however long the
 * volunteer keeps beating.
 */
const latestAfter = (task: Candidate, request: LeaseRequest, n: SQL) =>
  sql`now() + make_interval(secs => (${task.timeout_ms}::float8 * ceil((${n} + ${request.heldAhead ?? 0}::int)::numeric / ${request.threads}::int)::float8
                                     * 100 / ${request.cpuPercent ?? 100}::int + ${request.graceMs}::bigint) / 1000.0)`;

/**
 * One round trip: extra copies of chunks whose quorum is under way ('voting'), as blocks of
 * consecutive such chunks (so a replicated task's copies are as cheap to hand out as its
 * first ones), never to a volunteer (or user) that already voted on a chunk or holds a copy.
 */
function leaseCopies(db: Db, task: Candidate, want: number, ahead: number, request: LeaseRequest): Promise<LeaseBlockRow[]> {
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
                            AND l.first_idx <= cs.idx AND l.first_idx > cs.idx - ${maxBlockChunks}::int AND l.first_idx + l.n > cs.idx
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

/**
 * One round trip: pending retries become one-chunk leases (a retry keeps its own row, see
 * submit-blocks.ts), or else a block of fresh chunks is cut from the first unlocked stripe
 * (preferring the volunteer's own, so concurrent volunteers start on different rows). A
 * reduce level's stripe (a negative number) gives one chunk a block: a reduce chunk's input
 * is up to 256 results. See `deadlineAfter` for deadlines.
 */
function leaseFromTask(db: Db, task: Candidate, want: number, ahead: number, request: LeaseRequest, locking: "skip-locked" | "wait"): Promise<LeaseBlockRow[]> {
  const preferredStripe = stripeHint(request.volunteerId);
  // `ahead`: chunks this request already holds, which the volunteer runs before these.
  const deadline = (n: SQL) => deadlineAfter(task, request, sql`${n} + ${ahead}::int`);
  const latest = (n: SQL) => latestAfter(task, request, sql`${n} + ${ahead}::int`);
  return hotRows<LeaseBlockRow>(
    db,
    sql`WITH retry AS (
          SELECT idx FROM chunk_state
          WHERE task_id = ${task.id} AND status = 'pending' AND ${stillRunning(task)}
          ORDER BY idx LIMIT ${Math.min(want, maxRetriesPerStatement)} FOR UPDATE SKIP LOCKED
        ), retry_count AS (
          SELECT count(*)::int AS n FROM retry
        ), retry_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, reported, deadline, request_key, source, latest)
          SELECT ${task.id}, ${request.volunteerId}, idx, 1, B'0', ${deadline(sql`(SELECT n FROM retry_count)`)}, ${request.idempotencyKey ?? null},
                 ${request.source ?? null}::text, ${latest(sql`(SELECT n FROM retry_count)`)}
          FROM retry ORDER BY idx
          RETURNING id, first_idx, n, deadline
        ), retry_marked AS (
          UPDATE chunk_state cs SET status = 'leased', lease_id = rl.id
          FROM retry_leases rl WHERE cs.task_id = ${task.id} AND cs.idx = rl.first_idx
        ), stripe AS (
          SELECT stripe, next_idx, end_idx FROM stripes
          WHERE task_id = ${task.id} AND next_idx < end_idx AND (SELECT n FROM retry_count) = 0 AND ${stillRunning(task)}
          ORDER BY stripe < ${preferredStripe}, stripe
          LIMIT 1 FOR UPDATE ${locking === "wait" ? sql`` : sql`SKIP LOCKED`}
        ), advanced AS (
          UPDATE stripes s SET next_idx = least(stripe.end_idx, stripe.next_idx + CASE WHEN stripe.stripe < 0 THEN 1 ELSE ${want}::int END)
          FROM stripe WHERE s.task_id = ${task.id} AND s.stripe = stripe.stripe
          RETURNING stripe.next_idx AS first_idx, s.next_idx - stripe.next_idx AS n
        ), fresh_leases AS (
          INSERT INTO leases (task_id, volunteer_id, first_idx, n, reported, deadline, request_key, source, latest)
          SELECT ${task.id}, ${request.volunteerId}, first_idx, n, ${noneReported(sql`n`)}, ${deadline(sql`advanced.n`)}, ${request.idempotencyKey ?? null},
                 ${request.source ?? null}::text, ${latest(sql`advanced.n`)}
          FROM advanced
          RETURNING id, first_idx, n, deadline
        ), granted AS (
          SELECT * FROM retry_leases UNION ALL SELECT * FROM fresh_leases
        )
        -- One row per lease row, not per chunk: a block costs the API one row to read.
        SELECT g.id AS lease_id, g.first_idx, g.n, g.deadline, ${storedInputs(task, sql`g`)} AS inputs, ${checkpointOf(sql`${task.id}::uuid`, sql`g`)} AS checkpoint
        FROM granted g
        ORDER BY g.first_idx`,
  );
}

/** A stable small number per volunteer, to spread volunteers over a task's stripes. */
function stripeHint(volunteerId: string): number {
  let hash = 0;
  for (let i = 0; i < volunteerId.length; i++) hash = (hash * 31 + volunteerId.charCodeAt(i)) | 0;
  return Math.abs(hash) % 16;
}
