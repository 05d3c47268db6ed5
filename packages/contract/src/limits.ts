// Limits of the wire contract, as plain numbers: the server enforces them, clients size
// their requests by them. Free of zod so that any package (the db's scheduler too) can
// import them without a validator. docs/architecture.md explains each figure.

/**
 * The most chunks one block (one lease row, one signed lease id) holds. A block's results
 * are stored as one row when they come back whole, so bigger blocks mean fewer rows per
 * chunk; 4096 tiny chunks are ~0.5 s of one browser's work, and their inputs ~200 KiB.
 */
export const MAX_BLOCK_CHUNKS = 4096;
/** The most chunks one lease request is given, over all its blocks. */
export const MAX_LEASE_CHUNKS = 4096;
/** How long a volunteer asks to be kept busy when it does not say (BOINC's work buffer). */
export const DEFAULT_BUFFER_MS = 4000;
export const MAX_BUFFER_MS = 600_000;
/** The longest a lease request may ask the server to hold it for work (`waitMs`): under common proxies' 30 s idle cut. */
export const MAX_LEASE_WAIT_MS = 25_000;
/** Block reports per results request. */
export const MAX_REPORTS_PER_REQUEST = 256;
/** One chunk's result, as UTF-8 JSON. */
export const MAX_RESULT_BYTES = 1024 * 1024;
/** One error message, as UTF-8. */
export const MAX_ERROR_MESSAGE_BYTES = 4096;
/** Lease ids one heartbeat names. */
export const MAX_HEARTBEAT_LEASES = 256;

/**
 * What one chunk's console may hold: lines (one per `console.*` call) and characters of text
 * in all. The sandbox keeps no more (it reads these figures from here).
 */
export const MAX_CONSOLE_LINES = 100;
export const MAX_CONSOLE_CHARS = 16 * 1024;
/** One checkpoint (`ctx.checkpoint(state)`): characters of its JSON text. */
export const MAX_CHECKPOINT_CHARS = 256 * 1024;
/** Checkpoints one heartbeat carries, over all its blocks (the rest wait for the next beat). */
export const MAX_HEARTBEAT_CHECKPOINTS = 16;
/** Chunk progress entries one heartbeat carries, over all its blocks. */
export const MAX_HEARTBEAT_PROGRESS = 1024;
/** A progress message, in characters. */
export const MAX_PROGRESS_MESSAGE_CHARS = 256;

// A task as `POST /api/tasks` and a clone take it. The API refuses anything outside these;
// the task form and the CLI check the same bounds before they send (docs/architecture.md,
// "Live updates, metrics, limits").

/** Work code, as UTF-8 bytes. */
export const MAX_CODE_BYTES = 1024 * 1024;
/** A task's WebAssembly module. */
export const MAX_WASM_BYTES = 16 * 1024 * 1024;
/** Inputs given as one JSON array in the task body; more go up as NDJSON parts. */
export const MAX_ARRAY_INPUTS = 1_000_000;
/**
 * Lines one NDJSON upload part (`POST /api/tasks/{id}/inputs`) may hold, besides its 8 MiB:
 * each part is stored in one transaction, and every follower of results waits for the
 * longest one running (docs/architecture.md, "Bounds on what one caller holds").
 */
export const MAX_INPUT_PART_LINES = 65_536;
export const MAX_TASK_NAME_CHARS = 200;
export const MAX_TASK_DESCRIPTION_CHARS = 10_000;
/** User ids a task's allow-list may name. */
export const MAX_ALLOW_USERS = 1000;
/** The most chunks a task may have (chunk indexes are Postgres `int`s). */
export const MAX_TASK_CHUNKS = 2 ** 31 - 1;
/** The most integers one chunk of a range task may span. */
export const MAX_RANGE_CHUNK_SIZE = 1_000_000_000;

/** Each numeric task option: its bounds and what a task gets when it does not say. */
export const TASK_PRIORITY = { min: -1000, max: 1000, default: 0 } as const;
/** Copies of each chunk, on distinct volunteers; the quorum has the same bounds. */
export const TASK_REPLICATION = { min: 1, max: 16, default: 1 } as const;
/** Replicated tasks: the share of trusted volunteers' blocks copied to check them, in (0, 1]. */
export const TASK_SPOT_CHECK = { min: 0, max: 1, default: 1 } as const;
export const TASK_TIMEOUT_MS = { min: 100, max: 3_600_000, default: 60_000 } as const;
/** Each worker's memory budget, in MiB: a chunk over it fails as `oom`. */
export const TASK_MEMORY_MB = { min: 16, max: 4096, default: 256 } as const;
export const TASK_MAX_ATTEMPTS = { min: 1, max: 100, default: 5 } as const;

/**
 * The deepest nesting of arrays and objects in any one value the platform stores (a chunk's
 * input, a result, a task option). Real data nests a handful of levels; JSON.stringify,
 * canonicalize and Postgres' parsers overflow somewhere between 10,000 and 50,000.
 */
export const MAX_JSON_DEPTH = 64;
/** The longest JSON text of one stored value (a chunk's input, an NDJSON line), in UTF-16 code units. */
export const MAX_JSON_VALUE_CHARS = 1024 * 1024;
