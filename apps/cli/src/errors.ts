// Exit codes scripts can trust, and the two kinds of failure that lead to them.
import { ApiError } from "@crowdcompute/sdk";

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

/** One readable line (or a few) for any thrown value, with a server problem's details. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const { status, title, detail, errors } = error.problem;
    const lines = [`${status} ${title}${detail ? `: ${detail}` : ""}`];
    for (const item of errors ?? []) lines.push(`  ${item.path || "(body)"}: ${item.message}`);
    return lines.join("\n");
  }
  if (error instanceof Error) {
    // fetch() hides the reason (ECONNREFUSED, ENOTFOUND) in `cause`.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (error.message === "fetch failed" && cause) return `cannot reach the server (${cause.code ?? cause.message ?? "network error"})`;
    return error.message;
  }
  return String(error);
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError ? exitCodes.usage : exitCodes.problem;
}
