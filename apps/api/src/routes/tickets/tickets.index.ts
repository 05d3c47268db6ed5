// `POST /api/tickets`: a short-lived ticket for `?ticket=` on event streams, since a browser's
// EventSource sends no Authorization header (lib/tickets.ts; the streams: routes/tasks/events.index.ts).

import { streamTicketSchema } from "@crowdcompute/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { authorize, createRouter } from "../../lib/context.ts";
import { security } from "../../lib/openapi.ts";

const tickets = createRoute({
  method: "post",
  path: "/api/tickets",
  security: security.anyone,
  summary: "Get a stream ticket",
  description: "A 60 s ticket for `?ticket=` on event streams (EventSource cannot send headers)",
  request: { body: { content: { "application/json": { schema: z.object({}).strict() } }, required: false } },
  responses: {
    201: {
      description: "the ticket, good for the caller's streams until expiresAt",
      content: { "application/json": { schema: streamTicketSchema } },
    },
  },
});

export const ticketRoutes = createRouter().openapi(tickets, async (c) => {
  const claims = await authorize(c, ["admin", "creator", "volunteer"]);
  return c.json(await c.var.deps.tickets.issue(claims), 201);
});
