// `GET /api/tasks/{id}/events`: a task's live view over Server-Sent Events (docs/architecture.md,
// "Live updates, metrics, limits"); browsers open it with a stream ticket (routes/tickets).

import { isFinalTaskStatus } from "@crowdcompute/contract";
import { getTaskView } from "@crowdcompute/db";
import { consoleWindow, type FollowCursor, followCursorNow, followStart, formatFollowCursor, parseFollowCursor, runningChunks } from "@crowdcompute/db/reads";
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { releaseWith, takeStreamSlot } from "../../lib/bounds.ts";
import { type AppContext, authorizeStream, createRouter, creatorRoles } from "../../lib/context.ts";
import { sleep } from "../../lib/live.ts";
import { problems, security } from "../../lib/openapi.ts";
import { unprocessable } from "../../lib/problem.ts";
import { requireTaskOwner } from "../../lib/task-access.ts";
import { taskJson } from "./tasks.handlers.ts";
import { taskIdParams } from "./tasks.routes.ts";

/** Progress events are at most this often, however fast a task moves. */
const minEventIntervalMs = 500;

const taskEvents = createRoute({
  method: "get",
  path: "/api/tasks/{id}/events",
  security: security.creatorStream,
  summary: "Follow a task's progress (SSE)",
  description: [
    "Server-Sent Events: `progress` with the task as GET /api/tasks/{id} shows it, at most every 500 ms while it changes, and a last one when it ends, followed by `end` (close the EventSource then).",
    "Also, while the task runs: `chunks`, the chunks volunteers are computing now with their latest `ctx.progress` (`{items: [{index, fraction, message, at}]}`, up to 100, in index order), each time that changes;",
    "and `console`, each chunk's console output as it is stored (`{index, outcome, lines, truncated, at, cursor}`), from the moment the stream opens,",
    "from the first with `?console=all`, or after a `cursor` with `?consoleAfter=` (a stream that broke resumes with no chunk missed or repeated).",
    "Every chunk's console output stored before the task ended comes before `end`.",
  ].join("\n"),
  request: {
    params: taskIdParams,
    query: z
      .object({
        ticket: z.string().max(2048).optional(),
        console: z.enum(["all", "new"]).optional().openapi({ description: "`all`: console output from the task's first; `new` (default): from now on" }),
        consoleAfter: z.string().max(40).optional().openapi({ description: "the `cursor` of the last `console` event seen: resume after it" }),
      })
      .strict(),
  },
  responses: { 200: { description: "an event stream", content: { "text/event-stream": { schema: z.string() } } }, ...problems(404) },
});

export const taskEventRoutes = createRouter().openapi(taskEvents, async (c) => {
  const { id } = c.req.valid("param");
  const query = c.req.valid("query");
  const { db } = c.var.deps;
  // A place among the creator's open streams until this one ends or its client goes
  // (lib/bounds.ts), taken before any query so that a flood of refused streams costs little.
  let release = () => {};
  try {
    const claims = await authorizeStream(c, creatorRoles, query.ticket, (early) => {
      release = takeStreamSlot(c, early.sub);
    });
    await requireTaskOwner(c, claims, id);
    let consoleCursor: FollowCursor;
    if (query.consoleAfter !== undefined) {
      const parsed = parseFollowCursor(query.consoleAfter);
      if (!parsed) throw unprocessable("consoleAfter is not a cursor a console event carried", [{ path: "consoleAfter", message: "the cursor of a console event" }]);
      consoleCursor = parsed;
    } else consoleCursor = query.console === "all" ? followStart : await followCursorNow(db);
    return releaseWith(streamEvents(c, id, consoleCursor), release) as never;
  } catch (error) {
    release();
    throw error;
  }
});

function streamEvents(c: AppContext, id: string, startCursor: FollowCursor): Response {
  const { db, changes } = c.var.deps;
  let consoleCursor = startCursor;
  return streamSSE(c, async (stream) => {
    const stop = new AbortController();
    stream.onAbort(() => stop.abort());
    let last = "";
    let lastChunks = '{"items":[]}';
    let lastWrite = Date.now();
    /** Writes the console output stored after the cursor, up to the reads' horizon; returns the last read's snapshot. */
    const drainConsole = async () => {
      for (;;) {
        const window = await consoleWindow(db, id, consoleCursor);
        for (const item of window.items) {
          const { cursor, at, ...rest } = item;
          await stream.writeSSE({ event: "console", data: JSON.stringify({ ...rest, at: at.toISOString(), cursor: formatFollowCursor(cursor) }) });
        }
        consoleCursor = window.cursor;
        if (window.items.length > 0) lastWrite = Date.now();
        if (!window.more) return window;
      }
    };
    for (let event = 0; !stop.signal.aborted; ) {
      const readAt = Date.now();
      const view = await getTaskView(db, id);
      if (!view) {
        await stream.writeSSE({ event: "end", data: JSON.stringify({ reason: "deleted" }) });
        break;
      }
      const data = JSON.stringify(taskJson(view));
      if (data !== last) {
        await stream.writeSSE({ event: "progress", data, id: String(event++) });
        last = data;
        lastWrite = Date.now();
      }
      const live = view.status === "running" || view.status === "paused";
      const chunks = JSON.stringify({ items: live ? (await runningChunks(db, id)).map((chunk) => ({ ...chunk, at: chunk.at.toISOString() })) : [] });
      if (chunks !== lastChunks) {
        await stream.writeSSE({ event: "chunks", data: chunks });
        lastChunks = chunks;
        lastWrite = Date.now();
      }
      const window = await drainConsole();
      if (isFinalTaskStatus(view.status)) {
        // Console output is stored before the submit that ends the task (db submit.ts), so
        // every transaction that stored some has an id below this read's xmax: drain until
        // the horizon passes it, and none is left behind.
        for (let settled = window; settled.horizon < window.snapshotEnd && !stop.signal.aborted; ) {
          await sleep(20, stop.signal);
          settled = await drainConsole();
        }
        // EventSource reconnects to a stream that just closes: `end` tells the page to close it.
        await stream.writeSSE({ event: "end", data: JSON.stringify({ reason: view.status }) });
        break;
      }
      if (Date.now() - lastWrite > 15_000) {
        await stream.write(": keep-alive\n\n");
        lastWrite = Date.now();
      }
      await changes.wait(id, stop.signal);
      await sleep(Math.max(0, minEventIntervalMs - (Date.now() - readAt)), stop.signal);
    }
  });
}
