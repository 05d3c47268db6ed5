/** The task options as typed into the form (text until checked). */
export interface TaskOptionsForm {
  replication: string;
  quorum: string;
  timeoutSec: string;
  maxAttempts: string;
  priority: string;
  webgpu: boolean;
  allowUsers: string;
}

export const defaultOptions: TaskOptionsForm = { replication: "1", quorum: "1", timeoutSec: "60", maxAttempts: "5", priority: "0", webgpu: false, allowUsers: "" };

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The options as the API takes them; a message per bad field goes into `out` (the server's bounds). */
export function parseOptions(options: TaskOptionsForm, out: Record<string, string>) {
  const int = (key: string, text: string, min: number, max: number) => {
    const n = Number(text.trim());
    if (!text.trim() || !Number.isInteger(n)) out[key] = "Enter a whole number.";
    else if (n < min || n > max) out[key] = `Between ${min} and ${max}.`;
    return n;
  };
  const replication = int("replication", options.replication, 1, 16);
  const quorum = int("quorum", options.quorum, 1, 16);
  if (!out.replication && !out.quorum && quorum > replication) out.quorum = "Quorum can be at most the replication.";
  const timeoutSec = Number(options.timeoutSec.trim());
  if (!options.timeoutSec.trim() || !Number.isFinite(timeoutSec) || timeoutSec < 0.1 || timeoutSec > 3600) out.timeoutMs = "Between 0.1 and 3600 seconds.";
  const maxAttempts = int("maxAttempts", options.maxAttempts, 1, 100);
  const priority = int("priority", options.priority, -1000, 1000);
  const allow = options.allowUsers.split(/[\s,]+/).filter(Boolean);
  const bad = allow.find((id) => !uuidPattern.test(id));
  if (bad) out.allowUsers = `"${bad}" is not a user id.`;
  return { replication, quorum, timeoutMs: Math.round(timeoutSec * 1000), maxAttempts, priority, requires: { webgpu: options.webgpu }, allowUsers: allow.length > 0 ? allow : null };
}
