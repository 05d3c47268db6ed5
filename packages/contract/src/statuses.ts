// The names of states, actions and kinds the wire carries, as plain lists: the schemas (tasks.ts,
// work.ts) make enums of them, and the db, the SDK's job API, the CLI and the sandbox read them
// without loading zod.

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

/** How a chunk can fail, as a volunteer reports it (the sandbox adds its own `cancelled`, never reported). */
export const chunkErrorKinds = ["throw", "timeout", "oom", "invalid-result"] as const;
export type ChunkErrorKind = (typeof chunkErrorKinds)[number];

/** What `console.*` of work code writes, one line per call. */
export const consoleLevels = ["log", "info", "warn", "error", "debug"] as const;
export type ConsoleLevel = (typeof consoleLevels)[number];

/** Whether a task of this status is over. */
export const isFinalTaskStatus = (status: TaskStatus): boolean => (finalTaskStatuses as readonly TaskStatus[]).includes(status);
