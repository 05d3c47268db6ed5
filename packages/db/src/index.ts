// The data layer's everyday surface: the database type, accounts and volunteers, tasks, and
// the work path (lease, submit, heartbeat, release, sweep). The rest is in subpaths, so that
// each importer names what it reads: `@crowdcompute/db/reads` (results, follow, chunks,
// progress and console, stats, throughput), `/accounts` (account states and the admin's
// account queries), `/audit` (invariant checks for tests and benchmarks); drivers in
// `/postgres`, `/pglite`, `/migrate` (Node), so that a bundle for Workers can leave PGlite out.

export { type ApiKeyRow, createApiKey, findApiKeyOwner, listApiKeys, maxActiveApiKeys, revokeApiKey } from "./accounts/api-keys.ts";
export { hitRateLimit, peekRateLimits, refundRateLimit } from "./accounts/rate-limits.ts";
export {
  createUser,
  createVolunteer,
  findUserByEmail,
  findUserById,
  getVolunteerFigures,
  linkVolunteer,
  pingDb,
  renameVolunteer,
  setDisplayName,
  type VolunteerLink,
} from "./accounts/users.ts";
export type { Db } from "./db.ts";
export { candidateTasksChanged } from "./dispatch/candidates.ts";
export { type ConsoleReport, type LiveChunkReport, recordChunkLive } from "./dispatch/chunk-live.ts";
export { reclaimExpiredLeases, releaseLeaseRequest, releaseLeases, sweepExpiredLeases } from "./dispatch/expire.ts";
export { heartbeatLeases, liveReportAllowed, oneBeatAtATime } from "./dispatch/heartbeat.ts";
export { leaseBlocks } from "./dispatch/lease.ts";
export { leaseWithinBounds } from "./dispatch/lease-bounds.ts";
export type { GrantedBlock, LeaseBound, LeaseBounds, LeaseOutcome, LeaseRequest } from "./dispatch/lease-types.ts";
export { type ChunkError, type ResultRun, submitResults } from "./dispatch/submit.ts";
export { listenTaskChanged, listenWorkReady, notifyTaskChanged, notifyWorkReady } from "./events.ts";
export type { DbHandle } from "./handle.ts";
export { volunteerMayReadTask } from "./reads/task-readers.ts";
export { appendInputs } from "./tasks/inputs.ts";
export { type CloneChanges, cloneTask, deleteTask, retryFailedChunks } from "./tasks/task-maintenance.ts";
export {
  createTask,
  getTaskAccess,
  getTaskCode,
  getTaskSummary,
  getTaskView,
  getTaskWasm,
  listTaskViews,
  type TaskView,
  transitionTask,
} from "./tasks/tasks.ts";
export { createWorkersDb } from "./workers.ts";
