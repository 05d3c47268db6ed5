// The tables described in docs/architecture.md, "The database".
// Fresh chunks are never stored one row each: a task's index
// space is cut into `stripes` that lessees advance, a lease covers a block of consecutive
// indexes, and `chunk_state` holds only the chunks that need their own state (a retry, a
// failure). Completed chunks are `results` rows, keyed (task_id, idx) for exactly-once.
// The hot tables (leases, results, chunk_state, task_counters) carry no foreign key to
// tasks: each FK check takes a KEY SHARE lock on the task row, and many concurrent
// submitters sharing one row's lock go through multixacts. Deleting a task deletes them.
import type { TaskStatus } from "@crowdcompute/contract";
import { sql } from "drizzle-orm";
import { bigint, bigserial, boolean, customType, index, integer, jsonb, pgTable, primaryKey, real, smallint, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});

/**
 * A 64-bit transaction id (Postgres `xid8`), read as decimal text: the order in which
 * following readers see final chunks (docs/architecture.md, Following results).
 */
const xid8 = customType<{ data: string; driverData: string }>({
  dataType: () => "xid8",
});

/** A bit string, read and written in SQL only (`B'0101'`): the JS side never sees it. */
const varbit = customType<{ data: string; driverData: string }>({
  dataType: () => "varbit",
});

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const users = pgTable("users", {
  id: uuid("id").primaryKey(),
  email: text("email").notNull().unique(),
  /** Shown to volunteers as the creator of a task; never the email. */
  displayName: text("display_name"),
  passwordHash: text("password_hash").notNull(),
  role: text("role").$type<"admin" | "creator">().notNull(),
  createdAt: createdAt(),
  /** Null until an admin approves the account; only consulted with REQUIRE_CREATOR_APPROVAL. */
  approvedAt: timestamp("approved_at", { withTimezone: true }),
  /** Set while an admin has suspended the account: it can do nothing, its tasks are paused. */
  suspendedAt: timestamp("suspended_at", { withTimezone: true }),
});

export const volunteers = pgTable("volunteers", {
  id: uuid("id").primaryKey(),
  userId: uuid("user_id").references(() => users.id, { onDelete: "set null" }),
  name: text("name").notNull(),
  /** Trusted volunteers' votes can carry a quorum alone; new ones start on probation (docs/architecture.md, "Replication, trust and reduce"). */
  trusted: boolean("trusted").notNull().default(false),
  /** Results of this volunteer that won a quorum. */
  wins: integer("wins").notNull().default(0),
  /** Wins shared with a vote of another vouching volunteer (an admin's or one that earned trust; never an owner's own). */
  vouchedWins: integer("vouched_wins").notNull().default(0),
  /** Up to 3 distinct vouching volunteers its wins were shared with (docs/architecture.md, "Replication, trust and reduce"). */
  vouchers: uuid("vouchers").array().notNull().default(sql`'{}'::uuid[]`),
  /** Its results that lost to a winning side with a vouching vote in it. */
  losses: integer("losses").notNull().default(0),
  /** Too many losses: its results no longer count (it is not told). */
  banned: boolean("banned").notNull().default(false),
  createdAt: createdAt(),
});

export const tasks = pgTable(
  "tasks",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => users.id),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    code: text("code").notNull(),
    codeSha256: text("code_sha256").notNull(),
    /** The code exports `reduce(results)`: the task ends with a tree of reduce chunks. */
    hasReduce: boolean("has_reduce").notNull().default(false),
    wasm: bytea("wasm"),
    wasmSha256: text("wasm_sha256"),
    status: text("status").$type<TaskStatus>().notNull(),
    priority: integer("priority").notNull().default(0),
    replication: integer("replication").notNull().default(1),
    quorum: integer("quorum").notNull().default(1),
    timeoutMs: integer("timeout_ms").notNull().default(60000),
    /** Each worker's memory budget in MiB, which the volunteer's sandbox enforces (docs/architecture.md, "The sandbox"). */
    memoryMb: integer("memory_mb").notNull().default(256),
    maxAttempts: integer("max_attempts").notNull().default(5),
    maxExpiries: integer("max_expiries").notNull().default(20),
    requires: jsonb("requires").$type<{ webgpu?: boolean }>().notNull().default({}),
    /** Replicated tasks: how far numbers of agreeing copies may differ; null: exact (docs/architecture.md, "Replication, trust and reduce"). */
    tolerance: jsonb("tolerance").$type<{ abs?: number; rel?: number } | null>(),
    /**
     * Replicated tasks: the share of trusted volunteers' blocks copied to check them; the rest
     * are accepted on that one copy (docs/architecture.md, "Replication, trust and reduce"). 1: every block.
     */
    spotCheck: real("spot_check").notNull().default(1),
    /** Server-side only: with a lease's id it picks the blocks spot-checked, unknown to volunteers. */
    spotSeed: text("spot_seed").notNull().default(sql`md5(random()::text || clock_timestamp()::text)`),
    allowUsers: jsonb("allow_users").$type<string[] | null>(),
    inputKind: text("input_kind").$type<"array" | "range" | "ndjson">().notNull(),
    range: jsonb("range").$type<{ start: number; end: number; step: number; size: number } | null>(),
    total: integer("total").notNull(),
    /** Bytes of the stored inputs (0 for a range): their mean caps how many chunks a block holds. */
    inputBytes: bigint("input_bytes", { mode: "number" }).notNull().default(0),
    sealed: boolean("sealed").notNull(),
    lastError: jsonb("last_error").$type<{ index: number; kind: string; message: string } | null>(),
    aggregate: jsonb("aggregate").$type<{ state: string; value?: unknown } | null>(),
    /** When the reduce tree was last thrown away (a ban reopened a chunk under it): reduce leases older than this are void. */
    reduceResetAt: timestamp("reduce_reset_at", { withTimezone: true }),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [index("tasks_running_idx").on(t.priority, t.createdAt).where(sql`status = 'running'`), index("tasks_owner_idx").on(t.ownerId, t.createdAt)],
);

export const stripes = pgTable(
  "stripes",
  {
    taskId: uuid("task_id")
      .notNull()
      .references(() => tasks.id, { onDelete: "cascade" }),
    stripe: smallint("stripe").notNull(),
    nextIdx: integer("next_idx").notNull(),
    endIdx: integer("end_idx").notNull(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.stripe] })],
);

export const chunkInputs = pgTable(
  "chunk_inputs",
  {
    taskId: uuid("task_id")
      .notNull()
      .references(() => tasks.id, { onDelete: "cascade" }),
    idx: integer("idx").notNull(),
    /** JSON text, served back verbatim. */
    input: text("input").notNull(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.idx] })],
);

export const leases = pgTable(
  "leases",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    taskId: uuid("task_id").notNull(),
    volunteerId: uuid("volunteer_id").notNull(),
    firstIdx: integer("first_idx").notNull(),
    n: smallint("n").notNull(),
    copy: smallint("copy").notNull().default(0),
    /**
     * n bits, leftmost first: bit i (`get_bit(reported, i)`) is set once the chunk at
     * first_idx + i has been reported (result or error). Written by the lease statements as
     * n zeros; a varbit because a block holds up to 4096 chunks.
     */
    reported: varbit("reported").notNull(),
    reclaimed: boolean("reclaimed").notNull().default(false),
    deadline: timestamp("deadline", { withTimezone: true }).notNull(),
    /** The lease request's `Idempotency-Key`, so that a repeat returns these leases. */
    requestKey: text("request_key"),
    /**
     * The network source of an anonymous volunteer's request (null for an account's): what a
     * source holds is bounded (docs/architecture.md, "Bounds on what one volunteer holds").
     */
    source: text("source"),
    /**
     * The latest deadline heartbeats may extend the block to: what its chunks need at the
     * volunteer's threads (⌈chunks / threads⌉ × timeoutMs, stretched by 100 / cpuPercent) plus
     * grace, from the lease. Null for blocks leased before it existed.
     */
    latest: timestamp("latest", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    index("leases_live_deadline_idx").on(t.deadline).where(sql`NOT reclaimed`),
    index("leases_task_idx").on(t.taskId, t.firstIdx),
    index("leases_request_key_idx").on(t.volunteerId, t.requestKey).where(sql`request_key IS NOT NULL`),
    // What a volunteer, and an anonymous source, holds: read before each lease request.
    index("leases_held_volunteer_idx").on(t.volunteerId).where(sql`NOT reclaimed`),
    index("leases_held_source_idx").on(t.source).where(sql`NOT reclaimed AND source IS NOT NULL`),
  ],
);

/**
 * Lease requests that carried an `Idempotency-Key`: the first request with a key inserts
 * its row and leases; a repeat finds the row and returns that request's leases instead.
 * Rows older than a day are dropped (a lease lives far less).
 */
export const leaseRequests = pgTable(
  "lease_requests",
  {
    volunteerId: uuid("volunteer_id").notNull(),
    key: text("key").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.volunteerId, t.key] }), index("lease_requests_created_idx").on(t.createdAt)],
);

/**
 * Final results. A row holds `n` consecutive chunks from `idx`: n = 1 is one chunk (its
 * result as JSON text); n > 1 is a block reported whole by the lease that held it, its
 * results as one JSON array text (result-rows.ts reads both shapes). Rows never overlap.
 */
export const results = pgTable(
  "results",
  {
    taskId: uuid("task_id").notNull(),
    idx: integer("idx").notNull(),
    n: smallint("n").notNull().default(1),
    /** The result as JSON text, or for n > 1 the JSON array of the n results. */
    result: text("result").notNull(),
    volunteerId: uuid("volunteer_id").notNull(),
    /** CPU time of the row's chunks together, bounded by what the server saw (see submit-blocks.ts). */
    cpuMs: bigint("cpu_ms", { mode: "number" }).notNull(),
    /** sha256 of the canonical JSON that won the quorum (replicated tasks only). */
    hash: text("hash"),
    /**
     * A chunk finished from another volunteer's checkpoint: that volunteer, who answers for the
     * state it handed on and is credited its time (docs/architecture.md, "Progress, console and checkpoints").
     */
    checkpointBy: uuid("checkpoint_by"),
    createdAt: createdAt(),
    /**
     * The id of the transaction that inserted the row: followers read rows in
     * (decided_xid, idx) order, and only below the oldest transaction still running, which
     * no later commit can fall behind (docs/architecture.md, Following results). Set by
     * the column default, so no writer names it.
     */
    decidedXid: xid8("decided_xid").notNull().default(sql`pg_current_xact_id()`),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.idx] }), index("results_task_created_idx").on(t.taskId, t.createdAt), index("results_task_decided_idx").on(t.taskId, t.decidedXid, t.idx)],
);

export const chunkState = pgTable(
  "chunk_state",
  {
    taskId: uuid("task_id").notNull(),
    idx: integer("idx").notNull(),
    status: text("status").$type<"pending" | "leased" | "failed">().notNull(),
    /** The lease that holds (leased) or last held (pending, failed) the chunk. */
    leaseId: bigint("lease_id", { mode: "number" }),
    attempts: integer("attempts").notNull().default(0),
    expiries: integer("expiries").notNull().default(0),
    /** Replicated chunks ('voting'): copies needed so far, copies leased out now, and counted votes in. */
    needed: smallint("needed").notNull().default(0),
    copiesOut: smallint("copies_out").notNull().default(0),
    votesIn: smallint("votes_in").notNull().default(0),
    lastError: jsonb("last_error").$type<{ kind: string; message: string } | null>(),
    /**
     * The transaction that made the chunk 'failed', stamped by a trigger (migration 0012)
     * whenever a row becomes failed, so that followers see each failure once, in the
     * order of results' decided_xid (docs/architecture.md, Following results).
     */
    decidedXid: xid8("decided_xid"),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.idx] }),
    index("chunk_state_pending_idx").on(t.taskId, t.idx).where(sql`status = 'pending'`),
    index("chunk_state_failed_decided_idx").on(t.taskId, t.decidedXid, t.idx).where(sql`status = 'failed'`),
    // The voting chunks that want another copy now: what extra copies are leased from.
    index("chunk_state_open_copies_idx").on(t.taskId, t.idx).where(sql`status = 'voting' AND copies_out + votes_in < needed`),
  ],
);

/**
 * What volunteers say of chunks they are computing (docs/architecture.md, "Progress, console
 * and checkpoints"): the latest `ctx.progress` and `ctx.checkpoint` of a chunk, written by
 * heartbeats only for chunks of leases the volunteer holds. A row exists only for a chunk
 * that reported one, and goes when the chunk is final (the submit statements delete the
 * rows of a stored run by index range, a probe that finds nothing for chunks that never
 * reported) or its task ends. Progress counts only while `lease_id` still holds the chunk
 * unreported (readers check), so a lease that vanished leaves nothing to clean up; its
 * checkpoint outlives it, for the next lease of the chunk.
 */
export const chunkLive = pgTable(
  "chunk_live",
  {
    taskId: uuid("task_id").notNull(),
    idx: integer("idx").notNull(),
    /** The lease whose volunteer sent the progress. */
    leaseId: bigint("lease_id", { mode: "number" }),
    fraction: real("fraction"),
    message: text("message"),
    progressAt: timestamp("progress_at", { withTimezone: true }),
    /** The latest checkpoint's state as JSON text (at most 256 KiB); only tasks with one copy per chunk keep one. */
    checkpoint: text("checkpoint"),
    checkpointAt: timestamp("checkpoint_at", { withTimezone: true }),
    /** The lease that sent the checkpoint: a chunk resumed from it names that lease's volunteer as its author. */
    checkpointLeaseId: bigint("checkpoint_lease_id", { mode: "number" }),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.idx] })],
);

/**
 * What a chunk's work code wrote to its console, for chunks that wrote any: the lines of the
 * attempt that decided it (`outcome` done) or of its latest failed attempt (`outcome` error),
 * kept apart from results so that reading results never reads them. `decided_xid` orders them
 * for the task's event stream, as results' does for following (docs/architecture.md,
 * Following results).
 */
export const chunkConsole = pgTable(
  "chunk_console",
  {
    taskId: uuid("task_id").notNull(),
    idx: integer("idx").notNull(),
    outcome: text("outcome").$type<"done" | "error">().notNull(),
    volunteerId: uuid("volunteer_id").notNull(),
    /** JSON text: [{level, text}], at most 100 lines and 16 KiB of text. */
    lines: text("lines").notNull(),
    truncated: boolean("truncated").notNull().default(false),
    createdAt: createdAt(),
    decidedXid: xid8("decided_xid").notNull().default(sql`pg_current_xact_id()`),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.idx] }), index("chunk_console_task_decided_idx").on(t.taskId, t.decidedXid, t.idx)],
);

export const taskCounters = pgTable(
  "task_counters",
  {
    taskId: uuid("task_id").notNull(),
    shard: smallint("shard").notNull(),
    done: integer("done").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    cpuMs: bigint("cpu_ms", { mode: "number" }).notNull().default(0),
    /** Credit granted for results that won their quorum, in ms. */
    credit: bigint("credit", { mode: "number" }).notNull().default(0),
    /** Replicated tasks' verification figures (docs/architecture.md, "Replication, trust and reduce"): every copy received, the first included; */
    copies: integer("copies").notNull().default(0),
    /** chunks that went to a vote (a copy beyond the first was asked for); */
    replicated: integer("replicated").notNull().default(0),
    /** chunks decided or failed with copies that disagreed; */
    disagreements: integer("disagreements").notNull().default(0),
    /** volunteers banned for losing on this task. */
    banned: integer("banned").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.shard] })],
);

/**
 * When each creator was last served a lease: tasks are handed out round-robin across
 * creators, least recently served first (docs/architecture.md, "Dispatch"). Updated at
 * most every 100 ms per creator, so busy creators' rows are not taken by every lease request.
 */
export const creatorTurns = pgTable("creator_turns", {
  ownerId: uuid("owner_id").primaryKey(),
  lastServedAt: timestamp("last_served_at", { withTimezone: true }).notNull(),
});

/**
 * One row per copy of a replicated chunk that came back: a volunteer, and a user, vote at
 * most once per chunk (the keys), so no one can stack copies. The hash is the server's,
 * of the result's RFC 8785 canonical JSON.
 */
export const votes = pgTable(
  "votes",
  {
    taskId: uuid("task_id").notNull(),
    idx: integer("idx").notNull(),
    volunteerId: uuid("volunteer_id").notNull(),
    userId: uuid("user_id"),
    hash: text("hash").notNull(),
    result: text("result").notNull(),
    cpuMs: integer("cpu_ms").notNull(),
    /** The credit this copy earns if it wins: min(cpuMs, lease-to-result time, timeoutMs). */
    claim: integer("claim").notNull(),
    /** Whether the voter was trusted (or the task owner's) when it voted. */
    trusted: boolean("trusted").notNull(),
    /** False once the voter is banned: kept for the record, left out of every tally. */
    counted: boolean("counted").notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.idx, t.volunteerId] }), uniqueIndex("votes_user_once_idx").on(t.taskId, t.idx, t.userId).where(sql`user_id IS NOT NULL`)],
);

/** Creators' API keys: only the sha256 of the key is kept; the key is shown once. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** The key's first characters, so a creator can tell keys apart. */
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    createdAt: createdAt(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("api_keys_user_idx").on(t.userId, t.createdAt)],
);

/**
 * Fixed-window counters for abuse limits (login attempts, sign-ups), shared by every API
 * process and Workers isolate: one row per key, reset when its window has passed.
 */
export const rateLimits = pgTable("rate_limits", {
  key: text("key").primaryKey(),
  windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
  hits: integer("hits").notNull(),
});

/**
 * Chunks done and CPU time per volunteer, for the leaderboard. Kept by a statement-level
 * trigger on `results` (migration 0001) that sees only the rows an INSERT really added, so
 * a duplicate submission moves nothing; one row per volunteer, so no row is shared.
 */
export const volunteerCounters = pgTable("volunteer_counters", {
  volunteerId: uuid("volunteer_id").primaryKey(),
  done: integer("done").notNull().default(0),
  cpuMs: bigint("cpu_ms", { mode: "number" }).notNull().default(0),
  /** Credit for results that won their quorum, in ms (kept by the submit path, not the trigger). */
  credit: bigint("credit", { mode: "number" }).notNull().default(0),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * A task's chunks done per minute, for the throughput chart over the task's whole life
 * (docs/architecture.md, "Throughput history"). Not written by the submit path: the reader
 * folds `results` rows (by `created_at`, each counting its `n`) into closed minutes and keeps
 * them here, so each results row is read into the history about once. Only readers write it,
 * rarely, so it may carry a foreign key.
 */
export const taskThroughput = pgTable(
  "task_throughput",
  {
    taskId: uuid("task_id")
      .notNull()
      .references(() => tasks.id, { onDelete: "cascade" }),
    minute: timestamp("minute", { withTimezone: true }).notNull(),
    done: integer("done").notNull(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.minute] })],
);
