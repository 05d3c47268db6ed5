import { createRoute, z } from "@hono/zod-openapi";
import { appendInputs } from "@crowdcompute/db";
import { createRouter } from "../../lib/context.ts";
import { bodyLimitFor, bodyTooLarge } from "../../lib/limits.ts";
import { ndjsonLines } from "../../lib/ndjson.ts";
import { conflict, notFound, unprocessable } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";

const maxLineBytes = 1024 * 1024;

const append = createRoute({
  method: "post",
  path: "/api/tasks/{id}/inputs",
  summary: "Append NDJSON inputs; `offset` must equal the current total, `seal=true` ends the inputs",
  request: {
    params: z.object({ id: z.string() }),
    query: z
      .object({
        offset: z.coerce.number().int().min(0),
        seal: z.enum(["true", "false"]).default("false").transform((value) => value === "true"),
      })
      .strict(),
  },
  responses: {
    200: {
      description: "the task's input count after the append",
      content: { "application/json": { schema: z.object({ total: z.number(), sealed: z.boolean() }) } },
    },
    409: { description: "offset is not the current total, or the inputs are sealed" },
  },
});

export const inputRoutes = createRouter().openapi(append, async (c) => {
  const { id } = c.req.valid("param");
  const { offset, seal } = c.req.valid("query");
  await ownedTask(c, id);
  const outcome = await appendInputs(c.var.deps.db, {
    taskId: id,
    offset,
    seal,
    lines: ndjsonLines(c.req.raw.body as AsyncIterable<Uint8Array> | null, { maxLineBytes, maxBytes: bodyLimitFor(c.req.method, c.req.path), tooLarge: () => bodyTooLarge(c) }),
  });
  if (outcome.ok) {
    c.var.deps.taskChanged([id]);
    return c.json({ total: outcome.total, sealed: outcome.sealed }, 200);
  }
  switch (outcome.reason) {
    case "not-found":
      throw notFound("task");
    case "not-ndjson":
      throw conflict("this task's inputs were given at creation (an array or a range); only tasks created without inputs take NDJSON uploads");
    case "sealed":
      throw conflict(`the inputs of this task are sealed at ${outcome.total} chunks`);
    case "offset-mismatch":
      throw conflict(`offset ${offset} is not the current total ${outcome.total}: resume the upload at ?offset=${outcome.total}`);
    case "bad-line":
      throw unprocessable(`line ${outcome.line} is not JSON: ${outcome.message}`, [{ path: `body.line.${outcome.line}`, message: "not JSON" }]);
  }
});
