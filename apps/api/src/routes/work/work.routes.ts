// The volunteer side of the API, its routes: request and response schemas and summaries, the
// OpenAPI entries (docs/architecture.md, "Dispatch"). Handlers in work.handlers.ts, the wiring
// in work.index.ts.
import {
  heartbeatRequestSchema,
  heartbeatResponseSchema,
  leaseRequestSchema,
  leaseResponseSchema,
  releaseRequestSchema,
  releaseResponseSchema,
  resultsRequestSchema,
  resultsResponseSchema,
} from "@crowdcompute/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { security } from "../../lib/openapi.ts";

// Printable ASCII, as RFC 9110 field values allow and a UUID or a random token needs.
const idempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, "1 to 200 printable ASCII characters")
    .optional()
    .openapi({
      description:
        "A repeat of a lease request with the same key (per volunteer: its 32 newest keys, for at most a day) returns the blocks the first one got, less the chunks reported or taken back since",
    }),
});

export const lease = createRoute({
  method: "post",
  path: "/api/work/lease",
  summary: "Lease blocks of chunks",
  description: "Lease blocks of chunks, sized to keep the volunteer busy for bufferMs",
  security: security.volunteer,
  request: { headers: idempotencyHeaders, body: { content: { "application/json": { schema: leaseRequestSchema } }, required: true } },
  responses: { 200: { description: "blocks, or none and when to ask again", content: { "application/json": { schema: leaseResponseSchema } } } },
});

export const results = createRoute({
  method: "post",
  path: "/api/work/results",
  summary: "Report block results",
  description: "Report results and errors per block (a block may come in parts); with `next`, lease the following blocks in the same round trip",
  security: security.volunteer,
  request: { headers: idempotencyHeaders, body: { content: { "application/json": { schema: resultsRequestSchema } }, required: true } },
  responses: { 200: { description: "what was accepted", content: { "application/json": { schema: resultsResponseSchema } } } },
});

export const heartbeat = createRoute({
  method: "post",
  path: "/api/work/heartbeat",
  summary: "Heartbeat leased blocks",
  description: "Keep blocks alive while their chunks run; learn which were lost or cancelled",
  security: security.volunteer,
  request: { body: { content: { "application/json": { schema: heartbeatRequestSchema } }, required: true } },
  responses: { 200: { description: "each lease id, by what became of it", content: { "application/json": { schema: heartbeatResponseSchema } } } },
});

export const release = createRoute({
  method: "post",
  path: "/api/work/release",
  summary: "Release leased blocks",
  description: "Give blocks back before their deadline (the volunteer paused): their unreported chunks go to others at once",
  security: security.volunteer,
  request: { body: { content: { "application/json": { schema: releaseRequestSchema } }, required: true } },
  responses: { 200: { description: "which blocks were taken back", content: { "application/json": { schema: releaseResponseSchema } } } },
});
