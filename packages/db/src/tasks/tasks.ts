import type { Task, TaskOptions } from "@crowdcompute/contract";
import { type RangeInputs, rangeChunkCount, rangeChunkInput } from "@crowdcompute/contract/range";
import type { LifecycleAction, TaskStatus } from "@crowdcompute/contract/statuses";
import { eq, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { candidateTasksChanged } from "../dispatch/candidates.ts";
import { advanceReduce } from "../dispatch/reduce.ts";
import { addStripes } from "../dispatch/stripes.ts";
import { newId } from "../ids.ts";
import { awaitingCopyOfTask, computedByOfTask, counterTotals, leasedChunksOfTask, volunteersOfTask } from "../reads/task-counts.ts";
import { chunkInputs, tasks, users } from "../schema.ts";

export type { TaskStatus };
export { rangeChunkInput };
/** A range as stored: the step resolved (contract/src/range.ts derives the chunks). */
export type RangeSpec = Required<RangeInputs>;
export type InputKind = "array" | "range" | "ndjson";
/** Arrays and ranges are sealed at creation; NDJSON inputs are appended later (`appendInputs`). */
export type TaskInputs = { kind: "array"; items: unknown[] } | ({ kind: "range" } & RangeSpec) | { kind: "ndjson" };

/** A task to create: the contract's options (packages/contract, `taskOptionsSchema`) with its code and inputs. */
export type NewTask = Omit<TaskOptions, "memoryMb" | "tolerance" | "spotCheck"> & {
  ownerId: string;
  code: string;
  codeSha256: string;
  /** The code exports `reduce(results)` (checked by parsing it). */
  hasReduce?: boolean;
  /** The task's WebAssembly module (validated by the API) and its lowercase hex sha256. */
  wasm?: { bytes: Uint8Array; sha256: string } | null;
  /** Each worker's memory budget (MiB); the column's default (256) when left out. */
  memoryMb?: number;
  /** Replicated tasks' tolerance for numbers; exact agreement when null or left out. */
  tolerance?: TaskOptions["tolerance"];
  /** Replicated tasks' share of trusted blocks copied; 1 (every block) when left out. */
  spotCheck?: number;
  inputs: TaskInputs;
  start: boolean;
};

/**
 * A task as readers see it: the wire's task (packages/contract, `taskSchema`), counts per chunk
 * (not per copy), with what only the server sees (its owner, its kind of inputs) and dates as
 * Dates. The API shows it without those (`taskJson`).
 */
export type TaskView = Omit<Task, "createdAt" | "finishedAt"> & { ownerId: string; inputKind: InputKind; createdAt: Date; finishedAt: Date | null };

const inputRowsPerInsert = 2000;

/** Creates a task with its stripes and (for arrays) its inputs, in one transaction. */
export async function createTask(db: Db, input: NewTask): Promise<string> {
  const id = newId();
  const inputs = input.inputs;
  const total = inputs.kind === "array" ? inputs.items.length : inputs.kind === "range" ? rangeChunkCount(inputs) : 0;
  const itemTexts = inputs.kind === "array" ? inputs.items.map((item) => JSON.stringify(item)) : [];
  await db.transaction(async (tx) => {
    await tx.insert(tasks).values({
      id,
      ownerId: input.ownerId,
      name: input.name,
      description: input.description,
      code: input.code,
      codeSha256: input.codeSha256,
      hasReduce: input.hasReduce ?? false,
      wasm: input.wasm?.bytes ?? null,
      wasmSha256: input.wasm?.sha256 ?? null,
      status: input.start ? "running" : "draft",
      priority: input.priority,
      replication: input.replication,
      quorum: input.quorum,
      timeoutMs: input.timeoutMs,
      memoryMb: input.memoryMb,
      maxAttempts: input.maxAttempts,
      requires: input.requires,
      tolerance: input.tolerance ?? null,
      spotCheck: input.spotCheck ?? 1,
      allowUsers: input.allowUsers,
      inputKind: input.inputs.kind,
      range: inputs.kind === "range" ? rangeOf(inputs) : null,
      total,
      inputBytes: itemTexts.reduce((bytes, text) => bytes + text.length, 0),
      sealed: inputs.kind !== "ndjson",
    });
    await addStripes(tx, id, 0, total);
    if (inputs.kind === "array") {
      for (let offset = 0; offset < itemTexts.length; offset += inputRowsPerInsert) {
        const batch = itemTexts.slice(offset, offset + inputRowsPerInsert);
        await tx.execute(sql`
          INSERT INTO ${chunkInputs} (task_id, idx, input)
          SELECT ${id}::uuid, ${offset}::int + (ord - 1)::int, value
          FROM json_array_elements_text(${JSON.stringify(batch)}::json) WITH ORDINALITY AS t(value, ord)`);
      }
    }
  });
  candidateTasksChanged(db);
  return id;
}

function rangeOf(inputs: RangeSpec): RangeSpec {
  return { start: inputs.start, end: inputs.end, step: inputs.step, size: inputs.size };
}

/** What the statement computes rather than reads as it is shown; the rest of the row is the view's own fields, named as the view names them. */
type Derived = "counts" | "waiting" | "volunteers" | "computedBy" | "cpuMs" | "chunksPerSec" | "aggregate" | "verification" | "createdAt" | "finishedAt";
type Numeric = number | string; // sums and counts come back as text from postgres.js
type TaskRow = Omit<TaskView, Derived> & {
  total: Numeric;
  done: Numeric;
  failed: Numeric;
  cpu_ms: Numeric;
  copies: Numeric;
  replicated: Numeric;
  disagreements: Numeric;
  banned: Numeric;
  leased: Numeric;
  awaiting_copy: Numeric;
  volunteers: Numeric;
  computed_by: Numeric | null;
  recent: Numeric;
  window_s: Numeric;
  aggregate: TaskView["aggregate"] | null;
  created_at: Date | string;
  finished_at: Date | string | null;
};

// The view's own fields are selected under the view's names, so a new task field is a column
// here and a field in the contract's schema, nothing else. Counts are summed from the sharded
// counters and the live leases, never by counting chunks.
const taskViewColumns = sql`
  t.id, t.owner_id AS "ownerId", t.name, t.description, t.status, t.priority, t.replication, t.quorum,
  t.timeout_ms AS "timeoutMs", t.memory_mb AS "memoryMb", t.max_attempts AS "maxAttempts", t.requires, t.tolerance, t.spot_check AS "spotCheck",
  t.allow_users AS "allowUsers", t.code_sha256 AS "codeSha256", t.wasm_sha256 AS "wasmSha256", t.sealed,
  t.input_kind AS "inputKind", t.last_error AS "lastError",
  t.total, t.aggregate, t.created_at, t.finished_at,
  coalesce(c.done, 0) AS done, coalesce(c.failed, 0) AS failed, coalesce(c.cpu_ms, 0) AS cpu_ms,
  coalesce(c.copies, 0) AS copies, coalesce(c.replicated, 0) AS replicated, coalesce(c.disagreements, 0) AS disagreements, coalesce(c.banned, 0) AS banned,
  ${leasedChunksOfTask} AS leased, ${awaitingCopyOfTask} AS awaiting_copy, ${volunteersOfTask} AS volunteers, ${computedByOfTask} AS computed_by,
  (SELECT coalesce(sum(r.n), 0) FROM results r WHERE r.task_id = t.id AND r.created_at > now() - interval '60 seconds') AS recent,
  greatest(1, least(60, extract(epoch FROM now() - t.created_at))) AS window_s`;

function toTaskView(row: TaskRow): TaskView {
  const {
    total: totalText,
    done: doneText,
    failed: failedText,
    cpu_ms,
    copies,
    replicated,
    disagreements,
    banned,
    leased: leasedText,
    awaiting_copy,
    volunteers,
    computed_by,
    recent,
    window_s,
    aggregate,
    created_at,
    finished_at,
    ...fields
  } = row;
  const done = Number(doneText);
  const failed = Number(failedText);
  const leased = row.status === "running" || row.status === "paused" ? Number(leasedText) : 0;
  const total = Number(totalText);
  return {
    ...fields,
    counts: { total, pending: Math.max(0, total - done - failed - leased), leased, done, failed, awaitingCopy: Number(awaiting_copy) },
    waiting: null,
    volunteers: Number(volunteers),
    computedBy: computed_by === null ? null : Number(computed_by),
    cpuMs: Number(cpu_ms),
    chunksPerSec: Math.round((Number(recent) / Number(window_s)) * 100) / 100,
    verification: { copiesReceived: Number(copies), chunksReplicated: Number(replicated), disagreements: Number(disagreements), volunteersBanned: Number(banned) },
    aggregate: aggregate ?? { state: "none" },
    createdAt: new Date(created_at),
    finishedAt: finished_at ? new Date(finished_at) : null,
  };
}

export async function getTaskView(db: Db, id: string): Promise<TaskView | null> {
  const [row] = await queryRows<TaskRow>(db, sql`SELECT ${taskViewColumns} FROM tasks t ${counterTotals} WHERE t.id = ${id}`);
  if (!row) return null;
  const view = toTaskView(row);
  if (view.counts.awaitingCopy > 0) view.waiting = await waitingOf(db, id);
  return view;
}

/** How many awaiting chunks `waiting` reads at most: a task read stays bounded however many wait. */
const waitingExamined = 500;

/**
 * What a task's chunks awaiting a copy wait for (docs/architecture.md, "Replication, trust and
 * reduce"), over its first `waitingExamined` of them by index: each one's largest side of
 * counted votes, probed by key, as the chunk listing's `waitingFor` reads it.
 */
async function waitingOf(db: Db, id: string): Promise<TaskView["waiting"]> {
  const [row] = await queryRows<{ trusted_copy: Numeric; examined: Numeric }>(
    db,
    sql`WITH a AS (
          SELECT cs.idx FROM chunk_state cs JOIN tasks t ON t.id = cs.task_id
          WHERE cs.task_id = ${id} AND cs.status = 'voting' AND cs.copies_out = 0 AND cs.idx < t.total
          ORDER BY cs.idx LIMIT ${waitingExamined}
        )
        SELECT count(*) FILTER (WHERE s.n >= t.quorum AND NOT s.trusted) AS trusted_copy, count(*) AS examined
        FROM a JOIN tasks t ON t.id = ${id}
        LEFT JOIN LATERAL (
          SELECT count(*) AS n, bool_or(v.trusted) AS trusted FROM votes v
          WHERE v.task_id = ${id} AND v.idx = a.idx AND v.counted
          GROUP BY v.hash ORDER BY count(*) DESC, bool_or(v.trusted) DESC LIMIT 1) s ON true`,
  );
  // Blocks under vote as a whole (block-votes.ts): their counted votes all agree, one side a block.
  const [blocks] = await queryRows<{ trusted_copy: Numeric; examined: Numeric }>(
    db,
    sql`SELECT coalesce(sum(b.n) FILTER (WHERE b.votes_in >= t.quorum AND NOT s.trusted), 0) AS trusted_copy, coalesce(sum(b.n), 0) AS examined
        FROM (SELECT * FROM block_state WHERE task_id = ${id} AND copies_out = 0 ORDER BY first_idx LIMIT ${waitingExamined}) b
        JOIN tasks t ON t.id = ${id}
        CROSS JOIN LATERAL (SELECT coalesce(bool_or(v.trusted), false) AS trusted FROM block_votes v
                            WHERE v.task_id = ${id} AND v.first_idx = b.first_idx AND v.counted) s`,
  );
  const trustedCopy = Number(row?.trusted_copy ?? 0) + Number(blocks?.trusted_copy ?? 0);
  const examined = Number(row?.examined ?? 0) + Number(blocks?.examined ?? 0);
  return { trustedCopy, moreCopies: examined - trustedCopy, examined };
}

/** Newest first; `before` is the last id of the previous page (UUIDv7 sorts by time). */
export async function listTaskViews(db: Db, options: { ownerId: string | null; before: string | null; limit: number }): Promise<TaskView[]> {
  const owner = options.ownerId === null ? sql`true` : sql`t.owner_id = ${options.ownerId}`;
  const before = options.before === null ? sql`true` : sql`t.id < ${options.before}`;
  const rows = await queryRows<TaskRow>(
    db,
    sql`SELECT ${taskViewColumns} FROM tasks t ${counterTotals}
        WHERE ${owner} AND ${before} ORDER BY t.id DESC LIMIT ${options.limit}`,
  );
  return rows.map(toTaskView);
}

/** The owner and status of a task, for access checks. */
export async function getTaskAccess(db: Db, id: string): Promise<{ ownerId: string; status: TaskStatus } | null> {
  const [row] = await db.select({ ownerId: tasks.ownerId, status: tasks.status }).from(tasks).where(eq(tasks.id, id));
  return row ?? null;
}

export async function getTaskCode(db: Db, id: string): Promise<{ code: string; codeSha256: string } | null> {
  const [row] = await db.select({ code: tasks.code, codeSha256: tasks.codeSha256 }).from(tasks).where(eq(tasks.id, id));
  return row ?? null;
}

/**
 * What a volunteer may know of a task it computes for: its name, description, and its
 * creator's display name and id (the id, so the volunteer can choose to skip that creator).
 */
export async function getTaskSummary(db: Db, id: string): Promise<{ id: string; name: string; description: string; creator: string | null; creatorId: string } | null> {
  const [row] = await db
    .select({ id: tasks.id, name: tasks.name, description: tasks.description, creator: users.displayName, creatorId: tasks.ownerId })
    .from(tasks)
    .innerJoin(users, eq(users.id, tasks.ownerId))
    .where(eq(tasks.id, id));
  return row ?? null;
}

/** The task's WebAssembly module, or null when the task does not exist or has none. */
export async function getTaskWasm(db: Db, id: string): Promise<{ wasm: Uint8Array; wasmSha256: string } | null> {
  const [row] = await db.select({ wasm: tasks.wasm, wasmSha256: tasks.wasmSha256 }).from(tasks).where(eq(tasks.id, id));
  if (!row?.wasm || !row.wasmSha256) return null;
  return { wasm: row.wasm, wasmSha256: row.wasmSha256 };
}

/** Each of the contract's lifecycle actions, as the statuses it leaves and the one it makes. */
const lifecycleTransitions = {
  start: { from: ["draft"], to: "running" },
  pause: { from: ["running"], to: "paused" },
  resume: { from: ["paused"], to: "running" },
  cancel: { from: ["draft", "running", "paused"], to: "cancelled" },
} as const satisfies Record<LifecycleAction, { from: readonly TaskStatus[]; to: TaskStatus }>;

export type { LifecycleAction };

/** Moves a task along one lifecycle edge; false when its current status does not allow it. */
export async function transitionTask(db: Db, id: string, action: LifecycleAction): Promise<boolean> {
  const { from, to } = lifecycleTransitions[action];
  const rows = await queryRows<{ id: string }>(
    db,
    sql`UPDATE tasks SET status = ${to}, finished_at = CASE WHEN ${to} = 'cancelled' THEN now() ELSE finished_at END
        WHERE id = ${id} AND status IN ${from} RETURNING id`,
  );
  if (rows.length > 0) candidateTasksChanged(db);
  // A cancelled task's chunks run nowhere and are never retried: their progress and checkpoints go.
  if (rows.length > 0 && action === "cancel") await queryRows(db, sql`DELETE FROM chunk_live WHERE task_id = ${id}`);
  if (rows.length > 0 && action === "resume") await completeFinishedTasks(db, [id]);
  return rows.length > 0;
}

/**
 * Ends the given tasks that are sealed and whose every chunk is final: `done` when any
 * chunk is done, `failed` when none is. A task with a `reduce` export first climbs its
 * reduce tree (`advanceReduce`) and ends with the aggregate. Run by whoever may have made
 * the last chunk final.
 */
export async function completeFinishedTasks(db: Db, taskIds: readonly string[]): Promise<string[]> {
  if (taskIds.length === 0) return [];
  const finished = await queryRows<{ id: string; total: number; has_reduce: boolean; done: number; failed: number }>(
    db,
    sql`SELECT t.id, t.total, t.has_reduce, c.done::int AS done, c.failed::int AS failed
        FROM tasks t
        JOIN (SELECT task_id, sum(done) AS done, sum(failed) AS failed FROM task_counters
              WHERE task_id IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(taskIds)}::json))
              GROUP BY task_id) c ON c.task_id = t.id
        WHERE t.status = 'running' AND t.sealed AND c.done + c.failed >= t.total`,
  );
  const ended: string[] = [];
  for (const task of finished) {
    let aggregate: { state: string; value?: unknown } | null = null;
    if (task.has_reduce) {
      const progress = task.failed > 0 ? ({ state: "failed" } as const) : await advanceReduce(db, task.id, task.total);
      if (progress.state === "pending") continue;
      aggregate = progress;
    }
    const rows = await queryRows<{ id: string }>(
      db,
      sql`UPDATE tasks SET status = ${task.done > 0 ? "done" : "failed"}, finished_at = now(),
                 aggregate = coalesce(${aggregate === null ? null : JSON.stringify(aggregate)}::jsonb, aggregate)
          WHERE id = ${task.id} AND status = 'running' RETURNING id`,
    );
    if (rows.length > 0) ended.push(task.id);
  }
  // Every chunk is final: rows the submit statements leave (a replicated chunk's progress: a
  // vote clears nothing, another copy may still run) go with the task's end.
  if (ended.length > 0) await queryRows(db, sql`DELETE FROM chunk_live WHERE task_id IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(ended)}::json))`);
  return ended;
}
