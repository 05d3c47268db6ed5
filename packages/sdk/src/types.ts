// The wire shapes of the HTTP API (DESIGN §6), as creators' scripts and the web app see them.

export type TaskStatus = "draft" | "running" | "paused" | "done" | "failed" | "cancelled";

export interface User {
  id: string;
  email: string;
  role: "admin" | "creator";
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
  inputs?: unknown[];
  range?: RangeInputs;
  priority?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  requires?: { webgpu?: boolean };
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

/** An RFC 9457 problem, as every error response carries. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { path: string; message: string }[];
}
