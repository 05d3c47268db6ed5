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

/** Media types a part may be sent as: NDJSON by name, or plain text (curl's --data-binary default is refused below). */
const ndjsonTypes = /^(application\/x-ndjson|application\/jsonl|application\/ndjson|text\/plain)\b/i;

const append = createRoute({
  method: "post",
  path: "/api/tasks/{id}/inputs",
  summary: "Append NDJSON inputs",
  description:
    "Appends one part of the task's inputs: one JSON value per line, each line one chunk's input. `offset` is required and must equal the inputs already stored (`counts.total`, or the `total` this route last answered), so a retried part is never stored twice: any other offset is a 409 that names the right one. `seal=true` ends the inputs; an unsealed task never completes. A part holds at most 8 MiB and 65,536 lines. The body is NDJSON (`application/x-ndjson`); a JSON array sent as `application/json` is refused with 415 rather than stored as one input: send its elements one a line.",
  security: security.creator,
  request: {
    params: taskIdParams,
    query: z
      .object({
        offset: z
          .string({ error: "offset is required: the number of inputs already stored (the task's counts.total)" })
          .regex(/^\d{1,15}$/, "offset must be a whole number of inputs")
          .transform(Number)
          .openapi({ param: { required: true }, description: "the number of inputs already stored", example: "0" }),
        seal: z
          .enum(["true", "false"])
          .default("false")
          .transform((value) => value === "true")
          .openapi({ description: "true ends the inputs with this part" }),
      })
      .strict(),
    body: {
      required: true,
      description: "one JSON value per line, one chunk's input each",
      content: { "application/x-ndjson": { schema: z.string().openapi({ example: '{"n": 1}\n{"n": 2}\n' }) } },
    },
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

/** A part's media type: NDJSON or plain text; anything else (a JSON array above all) is a 415, not one odd input. */
function assertNdjsonBody(contentType: string | undefined): void {
  if (contentType === undefined || ndjsonTypes.test(contentType)) return;
  const hint = /^application\/json\b/i.test(contentType)
    ? "a JSON body would be stored as one input; send NDJSON instead: one JSON value per line (a JSON array's elements one a line), as application/x-ndjson"
    : "send NDJSON: one JSON value per line, as application/x-ndjson";
  throw new ProblemError(415, "Unsupported media type", `inputs are NDJSON, not ${contentType.split(";")[0]}: ${hint}`);
}

export const inputRoutes = createRouter().openapi(append, async (c) => {
  const { id } = c.req.valid("param");
  const { offset, seal } = c.req.valid("query");
  const { claims } = await ownedTask(c, id);
  assertNdjsonBody(c.req.header("content-type"));
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
    c.var.deps.workReady([id]); // new chunks: volunteers waiting for work take them
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
