// `POST /api/tasks/{id}/inputs`: NDJSON inputs in parts, each at the offset the server expects
// (docs/architecture.md, "The database"). A part (at most 8 MiB, lib/limits.ts, and 65,536
// lines) is read whole
// within the in-flight bounds, in one of its creator's few upload slots, and its lines checked
// before its transaction opens, so no transaction ever waits on a client (docs/architecture.md,
// "Bounds on what one caller holds").

import { appendInputsResponseSchema } from "@crowdcompute/contract";
import { MAX_INPUT_PART_LINES } from "@crowdcompute/contract/limits";
import { appendInputs } from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import { takeUploadSlot } from "../../lib/bounds.ts";
import { createRouter } from "../../lib/context.ts";
import { assertNdjsonLineWithinLimits } from "../../lib/json-limits.ts";
import { readRequestBody } from "../../lib/limits.ts";
import { problems, security } from "../../lib/openapi.ts";
import { conflict, notFound, ProblemError, unprocessable } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { taskIdParams } from "./tasks.routes.ts";

/**
 * The lines of a part, each bounded in length and depth before Postgres parses it (a
 * 100,000-deep line overflowed its stack: a 500). A last line without its newline counts.
 */
function checkedLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length > MAX_INPUT_PART_LINES) {
    throw new ProblemError(413, "Payload too large", `a part may hold at most ${MAX_INPUT_PART_LINES} lines (this one has ${lines.length}); send the rest in another request with ?offset=`);
  }
  lines.forEach((line, i) => {
    assertNdjsonLineWithinLimits(line, i + 1);
  });
  return lines;
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
  const { claims } = await ownedTask(c, id);
  // A place among the creator's uploads from before the first byte is read to the commit.
  const release = takeUploadSlot(c, claims.sub);
  let outcome: Awaited<ReturnType<typeof appendInputs>>;
  try {
    const giveBack = await readRequestBody(c);
    try {
      // In memory now: no wait on the client from here on.
      const lines = checkedLines(await c.req.text());
      outcome = await appendInputs(c.var.deps.db, { taskId: id, offset, seal, lines });
    } finally {
      giveBack();
    }
  } finally {
    release();
  }
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
