// The tasks' tables (docs/architecture.md, "The database"): a task, its stored inputs, the
// stripes its index space is cut into, its sharded counters and throughput, and the creators' turns.
import type { TaskStatus } from "@crowdcompute/contract";
import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, jsonb, pgTable, primaryKey, real, smallint, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { users } from "./accounts.ts";
import { bytea, createdAt } from "./columns.ts";

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
