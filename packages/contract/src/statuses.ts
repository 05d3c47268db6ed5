// The names of states and actions the wire carries, as plain lists: the schemas (tasks.ts) make
// enums of them, and the db, the SDK's job API and the CLI read them without loading zod.

/** A task's lifecycle: draft → running ⇄ paused → done | failed, or cancelled from any but the last two. */
export const taskStatuses = ["draft", "running", "paused", "done", "failed", "cancelled"] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** The statuses a task never leaves by itself: its results are all in (a retry of failed chunks can reopen done and failed). */
export const finalTaskStatuses = ["done", "failed", "cancelled"] as const satisfies readonly TaskStatus[];

/** What `POST /api/tasks/{id}/{action}` does. */
export const lifecycleActions = ["start", "pause", "resume", "cancel"] as const;
export type LifecycleAction = (typeof lifecycleActions)[number];

/** A chunk as the listing shows it (docs/architecture.md, "The database": fresh chunks are not stored one row each). */
export const chunkStatuses = ["pending", "leased", "voting", "done", "failed"] as const;
export type ChunkStatus = (typeof chunkStatuses)[number];

/** Whether a task of this status is over. */
export const isFinalTaskStatus = (status: TaskStatus): boolean => (finalTaskStatuses as readonly TaskStatus[]).includes(status);
