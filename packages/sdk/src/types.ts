// The wire shapes of the HTTP API (DESIGN §6), as creators' scripts and the web app see them.

export type TaskStatus = "draft" | "running" | "paused" | "done" | "failed" | "cancelled";

export interface User {
  id: string;
  email: string;
  role: "admin" | "creator";
  /** `pending`: waits for an admin's approval (REQUIRE_CREATOR_APPROVAL); `suspended`: by an admin. */
  status: "active" | "pending" | "suspended";
}

export interface Session {
  token: string;
  user: User;
}

export interface Volunteer {
  id: string;
  name: string;
  userId: string | null;
}

export interface Task {
  id: string;
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
  counts: { total: number; pending: number; leased: number; done: number; failed: number };
  cpuMs: number;
  chunksPerSec: number;
  lastError: { index: number; kind: string; message: string } | null;
  aggregate: { state: string; value?: unknown };
  createdAt: string;
  finishedAt: string | null;
}

export interface RangeInputs {
  start: number;
  end: number;
  step?: number;
  size: number;
}

export interface NewTask {
  name: string;
  description?: string;
  code: string;
  /** The task's WebAssembly module, base64 (≤ 16 MiB); work code gets it as `ctx.wasm`. */
  wasm?: string;
  inputs?: unknown[];
  range?: RangeInputs;
  priority?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  requires?: { webgpu?: boolean };
  /** Copies of each chunk run by distinct volunteers, and how many must agree. */
  replication?: number;
  quorum?: number;
  allowUsers?: string[] | null;
  start?: boolean;
}

export type LifecycleAction = "start" | "pause" | "resume" | "cancel";

export interface Capabilities {
  webgpu?: boolean;
  threads?: number;
  cpuPercent?: number;
}

export interface LeaseRequest {
  max: number;
  capabilities?: Capabilities;
  exclude?: { tasks?: string[]; creators?: string[] };
}

export interface Lease {
  leaseId: string;
  taskId: string;
  index: number;
  input: unknown;
  deadline: string;
  codeSha256: string;
  wasmSha256: string | null;
  timeoutMs: number;
  /** What the task needs of the volunteer. */
  requires?: { webgpu?: boolean };
  /** `reduce`: the input is an array of results, for the work code's `reduce` export. */
  entry?: "work" | "reduce";
}

/** A volunteer's own figures; credit is in ms of CPU that won a quorum. */
export interface VolunteerFigures {
  id: string;
  name: string;
  chunksDone: number;
  cpuMs: number;
  credit: number;
}

export interface HeartbeatResponse {
  /** Leases whose deadline moved on. */
  extended: string[];
  /** Leases taken back (they expired): their chunks are someone else's now. */
  lost: string[];
  /** Leases of tasks that stopped: stop computing them. */
  cancelled: string[];
}

export interface LeaseResponse {
  leases: Lease[];
  retryAfterMs: number;
}

export type ChunkErrorKind = "throw" | "timeout" | "oom" | "invalid-result";

export type ChunkReport =
  | { leaseId: string; result: unknown; cpuMs: number }
  | { leaseId: string; error: { kind: ChunkErrorKind; message: string }; cpuMs: number };

export interface SubmitResponse {
  accepted: number;
  rejected: { leaseId: string; reason: string }[];
  leases?: Lease[];
  retryAfterMs?: number;
}

/** One line of `GET /api/tasks/:id/results`. */
export type ResultLine =
  | { index: number; input: unknown; status: "done"; result: unknown }
  | { index: number; input: unknown; status: "failed"; error: { kind: string; message: string } };

export type ChunkStatus = "pending" | "leased" | "voting" | "done" | "failed";

/** One copy of a replicated chunk that came back. */
export interface ChunkVote {
  /** The name is the one the volunteer chose, never an email. */
  volunteer: { id: string; name: string | null };
  /** The first 12 hex digits of the server's hash of the result: equal prefixes, equal results. */
  hashPrefix: string;
  /** Whether it matches the accepted result; null while the chunk has none. */
  agrees: boolean | null;
  at: string;
}

/** One item of `GET /api/tasks/:id/chunks`. */
export interface Chunk {
  index: number;
  input: unknown;
  status: ChunkStatus;
  /** Errors and timeouts counted toward maxAttempts; null once done. */
  attempts: number | null;
  /** Leases that expired on it (vanished volunteers); null once done. */
  expiries: number | null;
  votes: ChunkVote[];
  lastError: { kind: string; message: string } | null;
}

/** An RFC 9457 problem, as every error response carries. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { path: string; message: string }[];
}

/** A creator's API key as listed: never the key itself, which `createApiKey` shows once. */
export interface ApiKey {
  id: string;
  name: string;
  /** The key's first characters, e.g. `cc_Xy12abCd`. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** `GET /api/stats`: site-wide figures, at most 1 s old. */
export interface SiteStats {
  tasks: Record<TaskStatus, number>;
  chunks: { done: number; failed: number };
  cpuMs: number;
  /** Results accepted per second over the last 60 s. */
  chunksPerSec: number;
  /** Volunteers with a lease or a result in the last 2 minutes. */
  volunteersOnline: number;
  at: string;
}

/** One line of `GET /api/leaderboard`, best first (by credit, then chunks done). */
export interface LeaderboardEntry {
  kind: "user" | "volunteer";
  id: string;
  name: string;
  chunksDone: number;
  cpuMs: number;
  credit: number;
}

export interface StreamTicket {
  ticket: string;
  expiresAt: string;
}

/** An account as admins see it (`GET /api/admin/users`). */
export interface Account {
  id: string;
  email: string;
  role: "admin" | "creator";
  createdAt: string;
  approvedAt: string | null;
  suspendedAt: string | null;
}
