// Exit codes scripts can trust, and the two kinds of failure that lead to them.
import { ApiError, escapeControlChars } from "@crowdcompute/sdk";

export const exitCodes = {
  ok: 0,
  /** The server refused or failed (a problem document, a network error), or a task ended failed. */
  problem: 1,
  /** The command line, a file or an input was wrong; nothing was sent. */
  usage: 2,
} as const;

/** A mistake in what the user typed or pointed at: reported before anything reaches the server. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Something went wrong after the command was understood (the server, the browser, a failed task). */
export class ProblemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProblemError";
  }
}

/**
 * One readable line (or a few) for any thrown value, with a server problem's details; each
 * line's text has its control characters escaped (a message may quote what someone wrote).
 */
export function describeError(error: unknown): string {
  const safe = (text: string) => escapeControlChars(text);
  if (error instanceof ApiError) {
    const { status, title, detail, errors } = error.problem;
    const lines = [`${status} ${safe(title)}${detail ? `: ${safe(detail)}` : ""}`];
    for (const item of errors ?? []) lines.push(`  ${safe(item.path || "(body)")}: ${safe(item.message)}`);
    return lines.join("\n");
  }
  if (error instanceof Error) {
    // fetch() hides the reason (ECONNREFUSED, ENOTFOUND) in `cause`.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (error.message === "fetch failed" && cause) return `cannot reach the server (${safe(cause.code ?? cause.message ?? "network error")})`;
    return error.message.split("\n").map(safe).join("\n");
  }
  return safe(String(error));
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError ? exitCodes.usage : exitCodes.problem;
}
