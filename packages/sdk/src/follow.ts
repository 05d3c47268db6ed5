// Following a task's results as they are decided (`GET /api/tasks/:id/results?follow=true`),
// resumed by itself after a dropped connection: every line carries a cursor, and a response
// that breaks (rather than ends) is asked again with `?after=` the last cursor read, so no
// line is missed or repeated (docs/architecture.md, Following results).

import { bodyLines } from "./lines.ts";

/** How a follow is done: where to resume from, when to stop, how long to keep trying. */
export interface FollowOptions {
  /** Resume after the line that carried this cursor (a followed line's `cursor`). */
  after?: string;
  /** Without `after`: `"now"` follows only the chunks decided from now on (a live tail); default from the first. */
  from?: "start" | "now";
  /** Stops the follow (the iterator returns). */
  signal?: AbortSignal;
  /** Give up (throw the last error) after this long without a successful answer; default 2 minutes. */
  retryForMs?: number;
}

/** One followed line, as the server wrote it (without its line break), and the cursor it carries. */
export interface FollowedLine {
  line: string;
  cursor: string;
}

/** Whether an error of a follow's request is worth another try: the network, or the server for now. */
export type Retryable = (error: unknown) => { retry: boolean; afterMs?: number };

const ndjsonCursor = /,"cursor":"(\d+-\d+)"\}$/;
const csvCursor = /,(\d+-\d+)$/;

/** The cursor a followed line carries, or null (a CSV header). */
export function cursorOfLine(line: string, format: "ndjson" | "csv"): string | null {
  return (format === "ndjson" ? ndjsonCursor : csvCursor).exec(line)?.[1] ?? null;
}

/**
 * The lines of a followed results stream, across as many requests as it takes: `open(start)`
 * makes one (it resolves with a 2xx response, or throws); a response that ends cleanly is the
 * end of the task's lines; one that breaks, or a request that fails in a way `retryable`
 * allows, is made again after the last cursor read. CSV headers are left out.
 */
export async function* followLines(
  open: (start: { after?: string; from?: "now" }, signal: AbortSignal) => Promise<Response>,
  format: "ndjson" | "csv",
  retryable: Retryable,
  { after, from, signal, retryForMs = 120_000 }: FollowOptions = {},
): AsyncGenerator<FollowedLine> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) stop.abort();
  let cursor = after;
  let failingSince: number | null = null;
  let delayMs = minDelayMs;
  try {
    while (!stop.signal.aborted) {
      try {
        const response = await open(cursor !== undefined ? { after: cursor } : from === "now" ? { from: "now" } : {}, stop.signal);
        failingSince = null;
        // A tail's starting point, so that one broken before its first line resumes from there.
        cursor ??= response.headers.get("x-follow-after") ?? undefined;
        for await (const line of responseLines(response)) {
          const carried = cursorOfLine(line, format);
          if (carried === null) continue; // a CSV header, sent with each response
          cursor = carried;
          delayMs = minDelayMs;
          yield { line, cursor: carried };
        }
        return; // a clean end: the task has ended and every line is out
      } catch (error) {
        if (stop.signal.aborted) return;
        const { retry, afterMs } = retryable(error);
        if (!retry) throw error;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > retryForMs) throw error;
        await sleep(afterMs ?? delayMs, stop.signal);
        delayMs = Math.min(delayMs * 2, maxDelayMs);
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop.abort(); // a consumer that stopped early closes the response in flight
  }
}

const minDelayMs = 250;
const maxDelayMs = 5_000;

/**
 * The complete non-empty lines of a response; a last line with no break is not complete (the
 * response broke inside it): the body's own error is thrown instead, or, for a body that ended
 * there, an error saying so.
 */
async function* responseLines(response: Response): AsyncGenerator<string> {
  for await (const line of bodyLines(response, "throw")) if (line && line !== "\r") yield line.replace(/\r$/, "");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
