import { createRoute, z } from "@hono/zod-openapi";
import { getTaskView } from "@crowdcompute/db";
import { streamSSE } from "hono/streaming";
import { authorize, authorizeStream, createRouter, creatorRoles } from "../../lib/context.ts";
import { sleep } from "../../lib/live.ts";
import { taskJson } from "../tasks/tasks.index.ts";
import { requireTaskOwner } from "../../lib/task-access.ts";

const finalStatuses = new Set(["done", "failed", "cancelled"]);
/** Progress events are at most this often, however fast a task moves. */
export const minEventIntervalMs = 500;

const tickets = createRoute({
  method: "post",
  path: "/api/tickets",
  tags: ["live"],
  security: [{ bearer: [] }],
  summary: "A 60 s ticket for `?ticket=` on event streams (EventSource cannot send headers)",
  request: { body: { content: { "application/json": { schema: z.object({}).strict() } }, required: false } },
  responses: {
    201: {
      description: "the ticket, good for the caller's streams until expiresAt",
      content: { "application/json": { schema: z.object({ ticket: z.string(), expiresAt: z.string() }) } },
    },
  },
});

const taskEvents = createRoute({
  method: "get",
  path: "/api/tasks/{id}/events",
  tags: ["live"],
  security: [{ bearer: [] }],
  summary: "Server-Sent Events: `progress` with the task as GET /api/tasks/{id} shows it, at most every 500 ms while it changes, and a last one when it ends, followed by `end` (close the EventSource then)",
  request: {
    params: z.object({ id: z.string() }),
    query: z.object({ ticket: z.string().max(2048).optional() }).strict(),
  },
  responses: { 200: { description: "an event stream", content: { "text/event-stream": { schema: z.string() } } } },
});

export const liveRoutes = createRouter()
  .openapi(tickets, async (c) => {
    const claims = await authorize(c, ["admin", "creator", "volunteer"]);
    return c.json(await c.var.deps.tickets.issue(claims), 201);
  })
  .openapi(taskEvents, async (c) => {
    const { id } = c.req.valid("param");
    const claims = await authorizeStream(c, creatorRoles, c.req.valid("query").ticket);
    const { db, changes } = c.var.deps;
    await requireTaskOwner(c, claims, id);
    return streamSSE(c, async (stream) => {
      const stop = new AbortController();
      stream.onAbort(() => stop.abort());
      let last = "";
      let lastWrite = Date.now();
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
        } else if (Date.now() - lastWrite > 15_000) {
          await stream.write(": keep-alive\n\n");
          lastWrite = Date.now();
        }
        if (finalStatuses.has(view.status)) {
          // EventSource reconnects to a stream that just closes: `end` tells the page to close it.
          await stream.writeSSE({ event: "end", data: JSON.stringify({ reason: view.status }) });
          break;
        }
        await changes.wait(id, stop.signal);
        await sleep(Math.max(0, minEventIntervalMs - (Date.now() - readAt)), stop.signal);
      }
    }) as never;
  });
