// The wire shapes of the HTTP API, as creators' scripts and the web app see them: inferred from
// the contract's schemas, the ones the API validates and documents with (packages/contract),
// type-only, so nothing of zod reaches a bundle that imports the SDK. What the event stream sends
// (below) is written as SSE text, not validated, so it is typed here.
import type { ChunkConsole, Task } from "@crowdcompute/contract";

// The volunteer side of the API (leases, block reports, heartbeats) is typed from the
// contract's own schemas: see @crowdcompute/contract.
/** One line of `GET /api/tasks/:id/results`; a followed line also carries its `cursor`. */
export type {
  Account,
  ApiKey,
  BlockReport,
  Chunk,
  ChunkConsole,
  ChunkConsoleReport,
  ChunkErrorKind,
  ChunkErrorReport,
  ChunkStatus,
  ChunkVote,
  CloneChanges,
  ConsoleLevel,
  ConsoleLine,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaderboardEntry,
  LeasedBlock,
  LeaseRequest,
  LeaseResponse,
  LifecycleAction,
  NewTask,
  Problem,
  RangeInputs,
  ReleaseResponse,
  ResultLine,
  ResultsResponse,
  Session,
  SiteStats,
  StreamTicket,
  Task,
  TaskStatus,
  TaskSummary,
  Throughput,
  User,
  Volunteer,
  VolunteerFigures,
} from "@crowdcompute/contract";

/** A chunk's console output as the task's event stream sends it, with the cursor to resume after it. */
export interface ChunkConsoleEvent extends ChunkConsole {
  index: number;
  cursor: string;
}

/** A chunk a volunteer is computing now, with its latest `ctx.progress`. */
export interface RunningChunk {
  index: number;
  fraction: number;
  message: string | null;
  at: string;
}

/** What the task's event stream (`GET /api/tasks/:id/events`) says. */
export type TaskEvent = { type: "progress"; task: Task } | { type: "chunks"; items: RunningChunk[] } | { type: "console"; console: ChunkConsoleEvent };
