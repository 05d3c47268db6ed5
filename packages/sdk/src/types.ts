// The wire shapes of the HTTP API, as creators' scripts and the web app see them: inferred from
// the contract's schemas, the ones the API validates and documents with (packages/contract),
// type-only, so nothing of zod reaches a bundle that imports the SDK. What the event stream sends
// (below) is written as SSE text, not validated, so it is typed here.
import type { BlockReport, ChunkConsole, Task } from "@crowdcompute/contract";

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

/**
 * A block report whose results are JSON text already, e.g. the sandbox's `resultJson`, which its
 * frame checked is one JSON value (at most 1 MiB, 64 levels deep) without parsing it:
 * `submitResults` writes each text into the request as it is, so a result is serialized once,
 * by the worker that computed it, and parsed once, by the API. On the wire it is a
 * `BlockReport`, its `results` those values. A text that is not one JSON value breaks the whole
 * request (400), so only texts checked like the sandbox's belong here.
 */
export type BlockReportTexts = Omit<BlockReport, "results"> & { resultTexts: string[] };

/** What `submitResults` takes: block reports with their results as values, or as JSON text. */
export type ResultReport = BlockReport | BlockReportTexts;
