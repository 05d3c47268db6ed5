// `GET /api/tasks/{id}/results`: the download, and following it as chunks are decided
// (docs/architecture.md, "Following results"; the query and line shapes: contract/src/results.ts).

import { FOLLOW_CSV_HEADER, RESULTS_CSV_HEADER, resultsQuerySchema } from "@crowdcompute/contract";
import {
  type FollowCursor,
  type FollowWaits,
  finalChunksDownload,
  followCursorNow,
  followFinalChunks,
  formatFollowCursor,
  getTaskForResults,
  parseFollowCursor,
  type ResultsFormat,
  type ResultsTask,
} from "@crowdcompute/db/reads";
import { createRoute, z } from "@hono/zod-openapi";
import { releaseWith, takeStreamSlot } from "../../lib/bounds.ts";
import { type AppContext, authorize, createRouter, creatorRoles } from "../../lib/context.ts";
import { followHeader } from "../../lib/follow.ts";
import { sleep } from "../../lib/live.ts";
import { problems, security } from "../../lib/openapi.ts";
import { notFound } from "../../lib/problem.ts";
import { requireTaskOwner } from "../../lib/task-access.ts";
import type { TokenClaims } from "../../lib/tokens.ts";
import { taskIdParams } from "./tasks.routes.ts";

const download = createRoute({
  method: "get",
  path: "/api/tasks/{id}/results",
  summary: "Download or follow results",
  description: [
    "Final chunks in index order, streamed as NDJSON (or CSV with ?format=csv); with ?follow=true, every chunk as it is decided until the task ends.",
    "Without `follow`: the chunks final now, in index order, and the response ends.",
    "With `follow=true`: every final chunk, already decided or decided later, in the order decided (not index order), each once, and the response ends when the task has ended (done, failed or cancelled) and every line is out.",
    "Each followed line carries a `cursor` (NDJSON: a last member; CSV: a last column): after a broken connection, `?follow=true&after=<the last cursor read>` resumes with no line missed or repeated.",
    "`from=now` follows only the chunks decided after the request (a live tail).",
    "A followed response that ends without its last chunk (a server shutting down, a network fault) is broken, not complete: resume it.",
    "A chunk decided again later (retry-failed, or a ban that reopened it) comes again with its new outcome.",
  ].join("\n"),
  security: security.creator,
  request: { params: taskIdParams, query: resultsQuerySchema },
  responses: {
    200: {
      description: "one line per final chunk: NDJSON {index, input, status, result | error[, cursor]}, or CSV index,status,input,result,error[,cursor] with each cell JSON",
      content: { "application/x-ndjson": { schema: z.string() }, "text/csv": { schema: z.string() } },
    },
    ...problems(404),
  },
});

export const resultRoutes = createRouter().openapi(download, async (c) => {
  const { id } = c.req.valid("param");
  const { format, follow, after, from } = c.req.valid("query");
  // A follow holds a place among its creator's open streams until it ends or its client goes
  // (lib/bounds.ts), taken before any query so that a flood of refused follows costs little.
  let release = () => {};
  const takePlace = follow === "true" ? (early: TokenClaims) => void (release = takeStreamSlot(c, early.sub)) : undefined;
  try {
    const claims = await authorize(c, creatorRoles, takePlace);
    await requireTaskOwner(c, claims, id);
    const db = c.var.deps.db;
    const task = await getTaskForResults(db, id);
    if (!task) throw notFound("task");
    if (follow === "true") {
      const start = after !== undefined ? parseFollowCursor(after)! : from === "now" ? await followCursorNow(db) : undefined;
      return releaseWith(followResults(c, task, format, start), release) as never;
    }
    const stream = textStream(finalChunksDownload(db, task, format), format === "csv" ? `${RESULTS_CSV_HEADER}\r\n` : "");
    const type = format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";
    // The typed-response helpers know no streams; the OpenAPI entry above documents this one.
    return c.body(stream, 200, { "content-type": type, "cache-control": "no-store" }) as never;
  } catch (error) {
    release();
    throw error;
  }
});

/**
 * `?follow=true`: the task's lines as they are decided, window by window
 * (docs/architecture.md, Following results). Woken by the change feed (NOTIFY on Node, a
 * poll on Workers) and by short polls while lines settle; stops when the client goes.
 * The header tells the Node entry's shutdown to break this response rather than end it,
 * so that a client resumes from its cursor instead of taking it as complete.
 */
function followResults(c: AppContext, task: ResultsTask, format: ResultsFormat, after: FollowCursor | undefined): Response {
  const { db, changes } = c.var.deps;
  const stop = new AbortController();
  const waits: FollowWaits = {
    listen() {
      const listening = new AbortController();
      const onStop = () => listening.abort();
      stop.signal.addEventListener("abort", onStop, { once: true });
      return {
        changed: changes.wait(task.id, listening.signal),
        stop: () => {
          stop.signal.removeEventListener("abort", onStop);
          listening.abort();
        },
      };
    },
    sleep: (ms) => sleep(ms, stop.signal),
  };
  const texts = followFinalChunks(db, task, format, { ...(after ? { after } : {}), waits, signal: stop.signal });
  const stream = textStream(texts, format === "csv" ? `${FOLLOW_CSV_HEADER}\r\n` : "", () => stop.abort());
  const type = format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";
  // Where the follow starts, when not from the first chunk: a client broken before the first
  // line resumes from here (a tail's start is the server's to know).
  const headers: Record<string, string> = { "content-type": type, "cache-control": "no-store", "x-accel-buffering": "no", [followHeader]: "true" };
  if (after) headers["x-follow-after"] = formatFollowCursor(after);
  return c.body(stream, 200, headers);
}

/**
 * The response body of a download or a follow: `first` (a CSV header), then each text the reader
 * yields (one window of lines), read only as the client takes them; a client that goes stops the
 * reader (`onCancel` first, for a follow that waits).
 */
function textStream(texts: AsyncGenerator<string, unknown, unknown>, first: string, onCancel?: () => void): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (first) controller.enqueue(encoder.encode(first));
    },
    async pull(controller) {
      const next = await texts.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      onCancel?.();
      await texts.return(undefined);
    },
  });
}
