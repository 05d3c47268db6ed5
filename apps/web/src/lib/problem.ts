import { ApiError, type Problem } from "@crowdcompute/sdk";

/** The server's problem document, or one describing a client-side failure. */
export function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  const detail = error instanceof Error ? error.message : String(error);
  return { type: "about:blank", title: "Request failed", status: 0, detail };
}

/** Field messages from a problem's `errors`, by top-level path (`range.end` → `range.end` and `range`). */
export function fieldErrors(problem: Problem | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of problem?.errors ?? []) {
    const path = issue.path.replace(/^body\./, "");
    out[path] ??= issue.message;
    const top = path.split(".")[0]!;
    out[top] ??= issue.message;
  }
  return out;
}
