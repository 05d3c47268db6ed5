// `POST /api/tasks/{id}/inputs`: NDJSON inputs in parts, each at the offset the server expects
// (docs/architecture.md, "The database"). The body is streamed and counted here, against the one
// body-limit table (lib/limits.ts).

import { appendInputsResponseSchema } from "@crowdcompute/contract";
import { appendInputs } from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../lib/context.ts";
import { assertNdjsonLineWithinLimits, maxJsonValueChars } from "../../lib/json-limits.ts";
import { bodyLimitFor, bodyTooLarge } from "../../lib/limits.ts";
import { ndjsonLines } from "../../lib/ndjson.ts";
import { problems, security } from "../../lib/openapi.ts";
import { conflict, notFound, unprocessable } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { taskIdParams } from "./tasks.routes.ts";

const maxLineBytes = maxJsonValueChars;

/** Each line bounded in length and depth before Postgres parses it: a 100,000-deep line overflowed its stack (a 500). */
async function* checkedLines(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let line = 0;
  for await (const text of lines) {
    assertNdjsonLineWithinLimits(text, ++line);
    yield text;
  }
}

const append = createRoute({
  method: "post",
  path: "/api/tasks/{id}/inputs",
  summary: "Append NDJSON inputs; `offset` must equal the current total, `seal=true` ends the inputs",
  security: security.creator,
  request: {
    params: taskIdParams,
    query: z
      .object({
        offset: z.coerce.number().int().min(0),
        seal: z
          .enum(["true", "false"])
          .default("false")
          .transform((value) => value === "true"),
      })
      .strict(),
  },
  responses: {
    200: {
      description: "the task's input count after the append",
      content: { "application/json": { schema: appendInputsResponseSchema } },
    },
    ...problems(404),
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
    lines: checkedLines(ndjsonLines(c.req.raw.body as AsyncIterable<Uint8Array> | null, { maxLineBytes, maxBytes: bodyLimitFor(c.req.method, c.req.path), tooLarge: () => bodyTooLarge(c) })),
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
