// The tables of DESIGN §5. Fresh chunks are never stored one row each: a task's index
// space is cut into `stripes` that lessees advance, a lease covers a block of consecutive
// indexes, and `chunk_state` holds only the chunks that need their own state (a retry, a
// failure). Completed chunks are `results` rows, keyed (task_id, idx) for exactly-once.
// The hot tables (leases, results, chunk_state, task_counters) carry no foreign key to
// tasks: each FK check takes a KEY SHARE lock on the task row, and many concurrent
// submitters sharing one row's lock go through multixacts. Deleting a task deletes them.
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  uniqueIndex,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uuid,
  customType,
} from "drizzle-orm/pg-core";

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
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
  /** Trusted volunteers' votes can carry a quorum alone; new ones start on probation (DESIGN §5). */
  trusted: boolean("trusted").notNull().default(false),
  /** Results of this volunteer that won a quorum. */
  wins: integer("wins").notNull().default(0),
  /** Its results that lost to a winning side with a trusted vote in it. */
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
    status: text("status")
      .$type<"draft" | "running" | "paused" | "done" | "failed" | "cancelled">()
      .notNull(),
    priority: integer("priority").notNull().default(0),
    replication: integer("replication").notNull().default(1),
    quorum: integer("quorum").notNull().default(1),
    timeoutMs: integer("timeout_ms").notNull().default(60000),
    maxAttempts: integer("max_attempts").notNull().default(5),
    maxExpiries: integer("max_expiries").notNull().default(20),
    requires: jsonb("requires").$type<{ webgpu?: boolean }>().notNull().default({}),
    allowUsers: jsonb("allow_users").$type<string[] | null>(),
    inputKind: text("input_kind").$type<"array" | "range" | "ndjson">().notNull(),
    range: jsonb("range").$type<{ start: number; end: number; step: number; size: number } | null>(),
    total: integer("total").notNull(),
    sealed: boolean("sealed").notNull(),
    lastError: jsonb("last_error").$type<{ index: number; kind: string; message: string } | null>(),
    aggregate: jsonb("aggregate").$type<{ state: string; value?: unknown } | null>(),
    /** When the reduce tree was last thrown away (a ban reopened a chunk under it): reduce leases older than this are void. */
    reduceResetAt: timestamp("reduce_reset_at", { withTimezone: true }),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    index("tasks_running_idx").on(t.priority, t.createdAt).where(sql`status = 'running'`),
    index("tasks_owner_idx").on(t.ownerId, t.createdAt),
  ],
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
    /** Bit i set: the chunk at first_idx + i has been reported (result or error). */
    reported: bigint("reported", { mode: "bigint" }).notNull().default(sql`0`),
    reclaimed: boolean("reclaimed").notNull().default(false),
    deadline: timestamp("deadline", { withTimezone: true }).notNull(),
    /** The lease request's `Idempotency-Key`, so that a repeat returns these leases. */
    requestKey: text("request_key"),
    createdAt: createdAt(),
  },
  (t) => [
    index("leases_live_deadline_idx").on(t.deadline).where(sql`NOT reclaimed`),
    index("leases_task_idx").on(t.taskId, t.firstIdx),
    index("leases_request_key_idx").on(t.volunteerId, t.requestKey).where(sql`request_key IS NOT NULL`),
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

export const results = pgTable(
  "results",
  {
    taskId: uuid("task_id").notNull(),
    idx: integer("idx").notNull(),
    /** The result as JSON text. */
    result: text("result").notNull(),
    volunteerId: uuid("volunteer_id").notNull(),
    cpuMs: integer("cpu_ms").notNull(),
    /** sha256 of the canonical JSON that won the quorum (replicated tasks only). */
    hash: text("hash"),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.idx] }),
    index("results_task_created_idx").on(t.taskId, t.createdAt),
  ],
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
    /** Replicated chunks ('voting'): copies needed so far, and copies leased out now. */
    needed: smallint("needed").notNull().default(0),
    copiesOut: smallint("copies_out").notNull().default(0),
    lastError: jsonb("last_error").$type<{ kind: string; message: string } | null>(),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.idx] }),
    index("chunk_state_pending_idx").on(t.taskId, t.idx).where(sql`status = 'pending'`),
  ],
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
  },
  (t) => [primaryKey({ columns: [t.taskId, t.shard] })],
);

/**
 * When each creator was last served a lease: tasks are handed out round-robin across
 * creators, least recently served first (DESIGN §5). Updated at most every 100 ms per
 * creator, so busy creators' rows are not taken by every lease request.
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
  (t) => [
    primaryKey({ columns: [t.taskId, t.idx, t.volunteerId] }),
    uniqueIndex("votes_user_once_idx").on(t.taskId, t.idx, t.userId).where(sql`user_id IS NOT NULL`),
  ],
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
