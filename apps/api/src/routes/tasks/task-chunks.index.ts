import { createRoute, z } from "@hono/zod-openapi";
import { chunkStatuses, listChunks, type ChunkListing } from "@crowdcompute/db";
import { createRouter } from "../../lib/context.ts";
import { notFound } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { taskIdParams } from "./tasks.schemas.ts";

const maxIndex = 2 ** 31 - 1;

const chunkVote = z
  .object({
    volunteer: z.object({ id: z.string(), name: z.string().nullable().openapi({ description: "the name the volunteer chose; never an email" }) }),
    hashPrefix: z.string().openapi({ description: "the first 12 hex digits of the server's sha256 of the result's canonical JSON: equal prefixes, equal results" }),
    agrees: z.boolean().nullable().openapi({ description: "whether this copy matches the accepted result; null while the chunk has none" }),
    at: z.string().openapi({ description: "when the copy came back" }),
  })
  .openapi("ChunkVote");

const chunkSchema = z
  .object({
    index: z.number().int(),
    input: z.unknown().openapi({ description: "the chunk's input (derived for range tasks)" }),
    status: z.enum(chunkStatuses),
    attempts: z.number().int().nullable().openapi({ description: "errors and timeouts counted toward maxAttempts; null once done (a completed chunk keeps no record of them)" }),
    expiries: z.number().int().nullable().openapi({ description: "leases that expired on it (volunteers that vanished), capped apart from attempts; null once done" }),
    votes: z.array(chunkVote).openapi({ description: "copies that came back, oldest first (replicated tasks only)" }),
    lastError: z.object({ kind: z.string(), message: z.string() }).nullable(),
  })
  .openapi("Chunk");

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
  summary: "The task's chunks with their attempts, votes and errors, in index order, page by page",
  description: [
    "Chunks are listed in index order; `nextCursor` (the last index a page looked at) fetches the next page, and a null one means there is none.",
    "Fresh chunks are never stored one row each, so a page reads only what it lists:",
    "- no `status`: every index of the page's window, so each page is full;",
    "- `done`: the stored results; `failed` and `voting`: the chunks with their own record of that state;",
    "- `pending`: retries waiting for a volunteer, the untouched part of the task's index ranges, and chunks of expired leases not yet taken back;",
    "- `leased`: the leases now out (the chunks in flight).",
    "Limits: a filtered page may hold fewer than `limit` items while `nextCursor` is not null (a chunk can change state while it is read): stop only at a null cursor.",
    "`status=pending` misses chunks that were out on a lease when the task was cancelled (the unfiltered listing shows them as pending).",
    "`leased` counts only in running or paused tasks, as the task's counts do. `attempts` and `lastError` are gone once a chunk is done.",
    "Reduce chunks are not listed.",
  ].join("\n"),
  request: { params: taskIdParams, query: chunksQuery },
  responses: {
    200: {
      description: "a page of chunks",
      content: { "application/json": { schema: z.object({ items: z.array(chunkSchema), nextCursor: z.string().nullable() }) } },
    },
  },
});

function chunkJson(chunk: ChunkListing) {
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
    lastError: chunk.lastError,
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
