// The types the lease path shares (candidates.ts, lease.ts, lease-fresh.ts, lease-copies.ts,
// lease-sql.ts, lease-bounds.ts, dispatch-cache.ts): a task that may be served, what a lease
// request asks for and is bounded by, and the blocks it is granted (docs/architecture.md, "Dispatch").
import type { RangeInputs } from "@crowdcompute/contract/range";

/** A running task a volunteer may be served, with what leasing from it needs. */
export type Candidate = {
  id: string;
  owner_id: string;
  input_kind: "array" | "range" | "ndjson";
  /** A range task's range, its step resolved (as tasks.ts stores it). */
  range: Required<RangeInputs> | null;
  timeout_ms: number;
  memory_mb: number;
  code_sha256: string;
  wasm_sha256: string | null;
  replication: number;
  /** A replicated task's share of blocks checked by a copy (1: every block). */
  spot_check: number;
  requires: { webgpu?: boolean };
  total: number;
  /** Results counted so far, and their mean CPU time (ms), for sizing blocks; null before any. */
  measured: number;
  mean_chunk_ms: number | null;
  /** The mean size of a stored input (0 for ranges), which caps a block's chunks. */
  mean_input_bytes: number;
};

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
  /**
   * How long a block stays leased without a heartbeat (the API's `LEASE_SILENT_MS`, 15 s): its
   * first deadline is at most this far off, and each beat moves it on by as much, up to its
   * `latest` (docs/architecture.md, "Dispatch"). None when absent: the deadline is what the
   * chunks need (the db's own tests and benches).
   */
  silentMs?: number;
  /** The request's `Idempotency-Key`: a repeat with the same key gets the same leases back. */
  idempotencyKey?: string | null;
  /** The network source of an anonymous volunteer (null for an account's): its leases count toward the source's bound. */
  source?: string | null;
  /** What the volunteer may hold and claim (`leaseWithinBounds`); none when absent (the db's own tests and benches). */
  bounds?: LeaseBounds;
  /**
   * The request's key is already claimed by this same request (a waiting request leasing again
   * after a wake-up): lease under it instead of returning what it got before.
   */
  keyClaimed?: boolean;
  /**
   * Volunteers waiting for work in this process besides this one (`waitMs`): a task not yet
   * timed gives each a share of its open chunks, so a new task reaches all of them at once.
   */
  waiting?: number;
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
  blocks: GrantedBlock[];
  /** The bound that held this request back (it got fewer chunks, or none), or null. */
  bounded: LeaseBound | null;
}

/**
 * A block of consecutive chunks granted to a lease request, one lease row, with what the API
 * serves of it (the contract's `LeasedBlock` is that answer; the API's `SignedBlock` is what
 * the block's signed lease id carries).
 */
export interface GrantedBlock {
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
  /** A replicated task's share of blocks checked by a copy: below 1, a trusted first copy may be accepted alone. */
  spotCheck: number;
  /** Offsets already reported (only a repeated Idempotency-Key gets a block with some). */
  reportedOffsets: number[];
  /**
   * A retry (a one-chunk block) of a chunk an earlier lease checkpointed: the state's JSON text,
   * for the volunteer to resume from; null otherwise.
   */
  checkpointJson: string | null;
}
