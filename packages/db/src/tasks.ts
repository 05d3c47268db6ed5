import { eq, sql } from "drizzle-orm";
import { queryRows, type Db } from "./db.ts";
import { newId } from "./ids.ts";
import { candidateTasksChanged } from "./candidates.ts";
import { advanceReduce } from "./reduce.ts";
import { addStripes } from "./stripes.ts";
import { counterTotals, leasedChunksOfTask } from "./task-counts.ts";
import { chunkInputs, tasks, users } from "./schema.ts";

export type TaskStatus = "draft" | "running" | "paused" | "done" | "failed" | "cancelled";
export type RangeSpec = { start: number; end: number; step: number; size: number };
/** Arrays and ranges are sealed at creation; NDJSON inputs are appended later (`appendInputs`). */
export type TaskInputs = { kind: "array"; items: unknown[] } | ({ kind: "range" } & RangeSpec) | { kind: "ndjson" };

export interface NewTask {
  ownerId: string;
  name: string;
  description: string;
  code: string;
  codeSha256: string;
  /** The code exports `reduce(results)` (checked by parsing it). */
  hasReduce?: boolean;
  /** The task's WebAssembly module (validated by the API) and its lowercase hex sha256. */
  wasm?: { bytes: Uint8Array; sha256: string } | null;
  priority: number;
  replication: number;
  quorum: number;
  timeoutMs: number;
  maxAttempts: number;
  requires: { webgpu?: boolean };
  allowUsers: string[] | null;
  inputs: TaskInputs;
  start: boolean;
}

/** A task as readers see it: options, status and counts per chunk (not per copy). */
export interface TaskView {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  status: TaskStatus;
  priority: number;
  replication: number;
  quorum: number;
  timeoutMs: number;
  maxAttempts: number;
  requires: { webgpu?: boolean };
  allowUsers: string[] | null;
  codeSha256: string;
  wasmSha256: string | null;
  sealed: boolean;
  inputKind: "array" | "range" | "ndjson";
  counts: { total: number; pending: number; leased: number; done: number; failed: number };
  cpuMs: number;
  chunksPerSec: number;
  lastError: { index: number; kind: string; message: string } | null;
  aggregate: { state: string; value?: unknown };
  createdAt: Date;
  finishedAt: Date | null;
}

/** Chunks in a range task: ⌈(end − start) / (step · size)⌉. */
export function rangeChunkCount(range: RangeSpec): number {
  if (range.end <= range.start) return 0;
  return Math.ceil((range.end - range.start) / (range.step * range.size));
}

/** The input of chunk `index` of a range task (DESIGN §4); never stored. */
export function rangeChunkInput(range: RangeSpec, index: number): { start: number; end: number; step: number } {
  const span = range.size * range.step;
  const start = range.start + index * span;
  return { start, end: Math.min(start + span, range.end), step: range.step };
}

const inputRowsPerInsert = 2000;

/** Creates a task with its stripes and (for arrays) its inputs, in one transaction. */
export async function createTask(db: Db, input: NewTask): Promise<string> {
  const id = newId();
  const inputs = input.inputs;
  const total = inputs.kind === "array" ? inputs.items.length : inputs.kind === "range" ? rangeChunkCount(inputs) : 0;
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
      maxAttempts: input.maxAttempts,
      requires: input.requires,
      allowUsers: input.allowUsers,
      inputKind: input.inputs.kind,
      range: inputs.kind === "range" ? rangeOf(inputs) : null,
      total,
      sealed: inputs.kind !== "ndjson",
    });
    await addStripes(tx, id, 0, total);
    if (inputs.kind === "array") {
      const items = inputs.items;
      for (let offset = 0; offset < items.length; offset += inputRowsPerInsert) {
        const batch = items.slice(offset, offset + inputRowsPerInsert).map((item) => JSON.stringify(item));
        await tx.execute(sql`
          INSERT INTO ${chunkInputs} (task_id, idx, input)
          SELECT ${id}::uuid, ${offset}::int + (ord - 1)::int, value
          FROM json_array_elements_text(${JSON.stringify(batch)}::json) WITH ORDINALITY AS t(value, ord)`);
      }
    }
  });
  candidateTasksChanged();
  return id;
}

function rangeOf(inputs: RangeSpec): RangeSpec {
  return { start: inputs.start, end: inputs.end, step: inputs.step, size: inputs.size };
}

type TaskRow = {
  id: string;
  owner_id: string;
  name: string;
  description: string;
  status: TaskStatus;
  priority: number;
  replication: number;
  quorum: number;
  timeout_ms: number;
  max_attempts: number;
  requires: { webgpu?: boolean };
  allow_users: string[] | null;
  code_sha256: string;
  wasm_sha256: string | null;
  sealed: boolean;
  input_kind: "array" | "range" | "ndjson";
  total: number;
  last_error: TaskView["lastError"];
  aggregate: TaskView["aggregate"] | null;
  created_at: Date | string;
  finished_at: Date | string | null;
  done: number | string;
  failed: number | string;
  cpu_ms: number | string;
  leased: number | string;
  recent: number | string;
  window_s: number | string;
};

// Counts are summed from the sharded counters and the live leases, never by counting chunks.
const taskViewColumns = sql`
  t.id, t.owner_id, t.name, t.description, t.status, t.priority, t.replication, t.quorum,
  t.timeout_ms, t.max_attempts, t.requires, t.allow_users, t.code_sha256, t.wasm_sha256,
  t.sealed, t.input_kind, t.total, t.last_error, t.aggregate, t.created_at, t.finished_at,
  coalesce(c.done, 0) AS done, coalesce(c.failed, 0) AS failed, coalesce(c.cpu_ms, 0) AS cpu_ms,
  ${leasedChunksOfTask} AS leased,
  (SELECT count(*) FROM results r WHERE r.task_id = t.id AND r.created_at > now() - interval '60 seconds') AS recent,
  greatest(1, least(60, extract(epoch FROM now() - t.created_at))) AS window_s`;

function toTaskView(row: TaskRow): TaskView {
  const done = Number(row.done);
  const failed = Number(row.failed);
  const leased = row.status === "running" || row.status === "paused" ? Number(row.leased) : 0;
  const total = Number(row.total);
  return {
    id: row.id,
    ownerId: row.owner_id,
    name: row.name,
    description: row.description,
    status: row.status,
    priority: row.priority,
    replication: row.replication,
    quorum: row.quorum,
    timeoutMs: row.timeout_ms,
    maxAttempts: row.max_attempts,
    requires: row.requires,
    allowUsers: row.allow_users,
    codeSha256: row.code_sha256,
    wasmSha256: row.wasm_sha256,
    sealed: row.sealed,
    inputKind: row.input_kind,
    counts: { total, pending: Math.max(0, total - done - failed - leased), leased, done, failed },
    cpuMs: Number(row.cpu_ms),
    chunksPerSec: Math.round((Number(row.recent) / Number(row.window_s)) * 100) / 100,
    lastError: row.last_error,
    aggregate: row.aggregate ?? { state: "none" },
    createdAt: new Date(row.created_at),
    finishedAt: row.finished_at ? new Date(row.finished_at) : null,
  };
}

export async function getTaskView(db: Db, id: string): Promise<TaskView | null> {
  const [row] = await queryRows<TaskRow>(db, sql`SELECT ${taskViewColumns} FROM tasks t ${counterTotals} WHERE t.id = ${id}`);
  return row ? toTaskView(row) : null;
}

/** Newest first; `before` is the last id of the previous page (UUIDv7 sorts by time). */
export async function listTaskViews(
  db: Db,
  options: { ownerId: string | null; before: string | null; limit: number },
): Promise<TaskView[]> {
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
export async function getTaskSummary(
  db: Db,
  id: string,
): Promise<{ id: string; name: string; description: string; creator: string | null; creatorId: string } | null> {
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

export const lifecycleTransitions = {
  start: { from: ["draft"], to: "running" },
  pause: { from: ["running"], to: "paused" },
  resume: { from: ["paused"], to: "running" },
  cancel: { from: ["draft", "running", "paused"], to: "cancelled" },
} as const satisfies Record<string, { from: readonly TaskStatus[]; to: TaskStatus }>;

export type LifecycleAction = keyof typeof lifecycleTransitions;

/** Moves a task along one lifecycle edge; false when its current status does not allow it. */
export async function transitionTask(db: Db, id: string, action: LifecycleAction): Promise<boolean> {
  const { from, to } = lifecycleTransitions[action];
  const rows = await queryRows<{ id: string }>(
    db,
    sql`UPDATE tasks SET status = ${to}, finished_at = CASE WHEN ${to} = 'cancelled' THEN now() ELSE finished_at END
        WHERE id = ${id} AND status IN ${from} RETURNING id`,
  );
  if (rows.length > 0) candidateTasksChanged();
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
  return ended;
}

