// The data layer: schema, queries and types. Drivers live in subpaths so that a bundle for
// Workers can leave PGlite out: `@crowdcompute/db/postgres`, `/pglite`, `/migrate` (Node).
export type { Db, DbHandle } from "./db.ts";
export { withRetry } from "./db.ts";
export { newId } from "./ids.ts";
export * from "./users.ts";
export * from "./tasks.ts";
export { leaseChunks, type LeaseRequest, type LeasedChunk } from "./lease.ts";
export { reclaimExpiredLeases } from "./expire.ts";
export { heartbeatLeases, type HeartbeatOutcome } from "./heartbeat.ts";
export { submitChunks, type ChunkError, type ChunkResult, type LeaseRef, type SubmitOutcome } from "./submit.ts";
export { finalChunksPage, getTaskForResults, type FinalChunk } from "./results.ts";
