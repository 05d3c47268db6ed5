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
export { appendInputs, type AppendOutcome } from "./inputs.ts";
export { cloneTask, deleteTask, retryFailedChunks } from "./task-maintenance.ts";
export { reduceChildren, reduceFanIn, reduceLevels, type ReduceLevel } from "./reduce.ts";
export { submitChunks, type ChunkError, type ChunkResult, type LeaseRef, type SubmitOutcome } from "./submit.ts";
export {
  finalChunksDownload,
  finalChunksPage,
  finalChunksWindow,
  getTaskForResults,
  nextFinalIndex,
  type DownloadWindow,
  type FinalChunk,
  type ResultsFormat,
  type ResultsTask,
} from "./results.ts";
export { chunkStatuses, listChunks, type ChunkListing, type ChunkPage, type ChunkStatus, type ChunkVote } from "./chunk-listing.ts";
export { auditTask, auditVolunteers, type TaskAudit, type VolunteerAudit } from "./audit.ts";
export { createApiKey, findApiKeyOwner, listApiKeys, maxActiveApiKeys, revokeApiKey, type ApiKeyRow } from "./api-keys.ts";
export { hitRateLimit, peekRateLimits, type RateLimitState } from "./rate-limits.ts";
export { leaderboard, siteStats, type LeaderboardEntry, type SiteStats } from "./stats.ts";
export { listenTaskChanged, notifyTaskChanged, taskChangedChannel } from "./events.ts";
export { createWorkersDb } from "./workers.ts";
export { approveUser, getAccountState, listAccounts, suspendUser, unsuspendUser, type AccountRow, type AccountState, type AccountStatus } from "./accounts.ts";
