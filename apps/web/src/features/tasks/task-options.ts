import { MAX_ALLOW_USERS, TASK_MAX_ATTEMPTS, TASK_MEMORY_MB, TASK_PRIORITY, TASK_REPLICATION, TASK_SPOT_CHECK, TASK_TIMEOUT_MS } from "@crowdcompute/contract/limits";

/** The task options as typed into the form (text until checked). */
export interface TaskOptionsForm {
  replication: string;
  quorum: string;
  timeoutSec: string;
  memoryMb: string;
  maxAttempts: string;
  priority: string;
  webgpu: boolean;
  allowUsers: string;
  /** Replicated tasks: how far numbers of agreeing copies may differ; both empty: exact. */
  toleranceAbs: string;
  toleranceRel: string;
  /** Replicated tasks: the share of trusted volunteers' blocks copied, in (0, 1]. */
  spotCheck: string;
}

export const defaultOptions: TaskOptionsForm = {
  replication: String(TASK_REPLICATION.default),
  quorum: String(TASK_REPLICATION.default),
  timeoutSec: String(TASK_TIMEOUT_MS.default / 1000),
  memoryMb: String(TASK_MEMORY_MB.default),
  maxAttempts: String(TASK_MAX_ATTEMPTS.default),
  priority: String(TASK_PRIORITY.default),
  webgpu: false,
  allowUsers: "",
  toleranceAbs: "",
  toleranceRel: "",
  spotCheck: String(TASK_SPOT_CHECK.default),
};

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The options as the API takes them; a message per bad field goes into `out` (the server's bounds: the contract's limits). */
export function parseOptions(options: TaskOptionsForm, out: Record<string, string>) {
  const int = (key: string, text: string, { min, max }: { min: number; max: number }) => {
    const n = Number(text.trim());
    if (!text.trim() || !Number.isInteger(n)) out[key] = "Enter a whole number.";
    else if (n < min || n > max) out[key] = `Between ${min} and ${max}.`;
    return n;
  };
  const replication = int("replication", options.replication, TASK_REPLICATION);
  const quorum = int("quorum", options.quorum, TASK_REPLICATION);
  if (!out.replication && !out.quorum && quorum > replication) out.quorum = "Quorum can be at most the replication.";
  const timeoutSec = Number(options.timeoutSec.trim());
  const [minSec, maxSec] = [TASK_TIMEOUT_MS.min / 1000, TASK_TIMEOUT_MS.max / 1000];
  if (!options.timeoutSec.trim() || !Number.isFinite(timeoutSec) || timeoutSec < minSec || timeoutSec > maxSec) out.timeoutMs = `Between ${minSec} and ${maxSec} seconds.`;
  const memoryMb = int("memoryMb", options.memoryMb, TASK_MEMORY_MB);
  const maxAttempts = int("maxAttempts", options.maxAttempts, TASK_MAX_ATTEMPTS);
  const priority = int("priority", options.priority, TASK_PRIORITY);
  const allow = options.allowUsers.split(/[\s,]+/).filter(Boolean);
  const bad = allow.find((id) => !uuidPattern.test(id));
  if (bad) out.allowUsers = `"${bad}" is not a user id.`;
  else if (allow.length > MAX_ALLOW_USERS) out.allowUsers = `At most ${MAX_ALLOW_USERS} users.`;
  const bound = (key: string, text: string) => {
    if (!text.trim()) return undefined;
    const n = Number(text.trim());
    if (!Number.isFinite(n) || n < 0) out[key] = "Enter a number of 0 or more, or leave it empty.";
    return n;
  };
  const abs = bound("toleranceAbs", options.toleranceAbs);
  const rel = bound("toleranceRel", options.toleranceRel);
  const spotCheck = Number(options.spotCheck.trim());
  if (!options.spotCheck.trim() || !Number.isFinite(spotCheck) || spotCheck <= TASK_SPOT_CHECK.min || spotCheck > TASK_SPOT_CHECK.max) out.spotCheck = "More than 0 and at most 1.";
  const tolerance = abs === undefined && rel === undefined ? null : { ...(abs !== undefined ? { abs } : {}), ...(rel !== undefined ? { rel } : {}) };
  return {
    replication,
    quorum,
    timeoutMs: Math.round(timeoutSec * 1000),
    memoryMb,
    maxAttempts,
    priority,
    requires: { webgpu: options.webgpu },
    tolerance,
    spotCheck,
    allowUsers: allow.length > 0 ? allow : null,
  };
}
