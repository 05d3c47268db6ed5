// `GET /api/tasks/{id}/chunks`: a task's chunks page by page, with their attempts, votes, progress
// and console (the item's schema: contract/src/tasks.ts, `chunkSchema`).

import { type Chunk, type ConsoleLine, chunkSchema, chunkStatuses, MAX_TASK_CHUNKS } from "@crowdcompute/contract";
import { type ChunkListing, listChunks } from "@crowdcompute/db/reads";
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../lib/context.ts";
import { problems, security } from "../../lib/openapi.ts";
import { notFound } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { taskIdParams } from "./tasks.routes.ts";

const maxIndex = MAX_TASK_CHUNKS;

const chunksQuery = z
  .object({
    status: z.enum(chunkStatuses).optional(),
    cursor: z
      .string()
      .regex(/^\d{1,10}$/, "a cursor is the nextCursor of the previous page")
      .refine((cursor) => Number(cursor) <= maxIndex, "a cursor is the nextCursor of the previous page")
      .optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

const list = createRoute({
  method: "get",
  path: "/api/tasks/{id}/chunks",
  summary: "List a task's chunks",
  description: [
    "The task's chunks with their attempts, votes and errors, in index order, page by page.",
    "Chunks are listed in index order; `nextCursor` (the last index a page looked at) fetches the next page, and a null one means there is none.",
    "Fresh chunks are never stored one row each, so a page reads only what it lists:",
    "- no `status`: every index of the page's window, so each page is full;",
    "- `done`: the stored results; `failed` and `voting`: the chunks with their own record of that state;",
    "- `pending`: retries waiting for a volunteer, the untouched part of the task's index ranges, and chunks of expired leases not yet taken back;",
    "- `leased`: the leases now out (the chunks in flight).",
    "Limits: a filtered page may hold fewer than `limit` items while `nextCursor` is not null (a chunk can change state while it is read): stop only at a null cursor.",
    "`status=pending` misses chunks that were out on a lease when the task was cancelled (the unfiltered listing shows them as pending).",
    "`leased` counts only in running or paused tasks, as the task's counts do. `attempts` and `lastError` are gone once a chunk is done.",
    "`progress` is the latest `ctx.progress` of a leased chunk (`status=leased` lists the chunks in flight with theirs); `console` what a chunk wrote to its console.",
    "Reduce chunks are not listed.",
  ].join("\n"),
  security: security.creator,
  request: { params: taskIdParams, query: chunksQuery },
  responses: {
    200: {
      description: "a page of chunks",
      content: { "application/json": { schema: z.object({ items: z.array(chunkSchema), nextCursor: z.string().nullable() }) } },
    },
    ...problems(404),
  },
});

function chunkJson(chunk: ChunkListing): Chunk {
  return {
    index: chunk.index,
    input: JSON.parse(chunk.input) as unknown,
    status: chunk.status,
    attempts: chunk.attempts,
    expiries: chunk.expiries,
    votes: chunk.votes.map((vote) => ({
      volunteer: { id: vote.volunteerId, name: vote.volunteerName },
      hashPrefix: vote.hashPrefix,
      agrees: vote.agrees,
      at: vote.at.toISOString(),
    })),
    copiesNeeded: chunk.copiesNeeded,
    waitingFor: chunk.waitingFor,
    lastError: chunk.lastError,
    progress: chunk.progress && { fraction: chunk.progress.fraction, message: chunk.progress.message, at: chunk.progress.at.toISOString() },
    checkpointAt: chunk.checkpointAt?.toISOString() ?? null,
    console: chunk.console && {
      outcome: chunk.console.outcome,
      lines: chunk.console.lines as ConsoleLine[],
      truncated: chunk.console.truncated,
      at: chunk.console.at.toISOString(),
    },
  };
}

export const taskChunkRoutes = createRouter().openapi(list, async (c) => {
  const { id } = c.req.valid("param");
  const { status, cursor, limit } = c.req.valid("query");
  await ownedTask(c, id);
  const page = await listChunks(c.var.deps.db, id, { status: status ?? null, after: cursor === undefined ? -1 : Number(cursor), limit });
  if (!page) throw notFound("task");
  return c.json({ items: page.items.map(chunkJson), nextCursor: page.nextAfter === null ? null : String(page.nextAfter) }, 200);
});
