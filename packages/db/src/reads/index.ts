// `@crowdcompute/db/reads`: what creators and the public read, none of it on the work path.

export { consoleWindow, runningChunks } from "./chunk-activity.ts";
export { type ChunkListing, listChunks, type WaitingFor } from "./chunk-listing.ts";
export {
  type FollowCursor,
  type FollowWaits,
  followCursorNow,
  followFinalChunks,
  followStart,
  formatFollowCursor,
  parseFollowCursor,
} from "./follow-results.ts";
export { finalChunksDownload, finalChunksPage, getTaskForResults, type ResultsFormat, type ResultsTask } from "./results.ts";
export { type LeaderboardEntry, leaderboard, type SiteStats, siteStats } from "./stats.ts";
export { taskThroughput } from "./throughput.ts";
