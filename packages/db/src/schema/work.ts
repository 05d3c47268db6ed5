// The work path's tables (docs/architecture.md, "The database", "Dispatch"): leases and their
// request keys, results, the chunks that need their own state, what running chunks report, and votes.
// They carry no foreign key to tasks (see schema.ts).
import { sql } from "drizzle-orm";
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, real, smallint, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { createdAt, varbit, xid8 } from "./columns.ts";

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

/**
 * A replicated block under vote as a whole (docs/architecture.md, "Replication, trust and
 * reduce"): the first copy of a block reported whole opens it, extra copies take it whole (same
 * first_idx and n), and copies that all agree decide every chunk at once. One row a block;
 * a block whose copies disagree is turned into per-chunk state (`chunk_state` 'voting', `votes`)
 * and this row goes.
 */
export const blockState = pgTable(
  "block_state",
  {
    taskId: uuid("task_id").notNull(),
    firstIdx: integer("first_idx").notNull(),
    n: smallint("n").notNull(),
    /** Copies needed so far, copies leased out now, and counted votes in, as chunk_state's. */
    needed: smallint("needed").notNull(),
    copiesOut: smallint("copies_out").notNull().default(0),
    votesIn: smallint("votes_in").notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.firstIdx] }),
    // The blocks that want another copy now: what extra copies are leased from first.
    index("block_state_open_copies_idx").on(t.taskId, t.firstIdx).where(sql`copies_out + votes_in < needed`),
  ],
);

/**
 * One row per copy of a block voted whole: its results as one JSON array text of canonical
 * JSON, and the sha256 of that text. Kept once the block is decided, so that a ban can take
 * back what a banned volunteer's vote decided. A volunteer, and a user, vote once a block.
 */
export const blockVotes = pgTable(
  "block_votes",
  {
    taskId: uuid("task_id").notNull(),
    firstIdx: integer("first_idx").notNull(),
    n: smallint("n").notNull(),
    volunteerId: uuid("volunteer_id").notNull(),
    userId: uuid("user_id"),
    hash: text("hash").notNull(),
    results: text("results").notNull(),
    cpuMs: bigint("cpu_ms", { mode: "number" }).notNull(),
    /** The credit this copy earns if it wins: its CPU time bounded as a vote's claim is. */
    claim: bigint("claim", { mode: "number" }).notNull(),
    trusted: boolean("trusted").notNull(),
    counted: boolean("counted").notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.firstIdx, t.volunteerId] }),
    uniqueIndex("block_votes_user_once_idx").on(t.taskId, t.firstIdx, t.userId).where(sql`user_id IS NOT NULL`),
    // a ban finds a volunteer's block votes by volunteer
    index("block_votes_volunteer_idx").on(t.volunteerId),
  ],
);
