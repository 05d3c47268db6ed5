// `GET /api/tasks/{id}/throughput`: the task's history for charts (docs/architecture.md, "Throughput history").

import { throughputSchema } from "@crowdcompute/contract";
import { taskThroughput } from "@crowdcompute/db/reads";
import { createRoute } from "@hono/zod-openapi";
import { createRouter } from "../../lib/context.ts";
import { problems, security } from "../../lib/openapi.ts";
import { notFound } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { taskIdParams } from "./tasks.routes.ts";

const history = createRoute({
  method: "get",
  path: "/api/tasks/{id}/throughput",
  summary: "A task's throughput history",
  description: [
    "Chunks done over the task's whole life, in buckets (for charts).",
    "Buckets of seconds while the task's results span at most five minutes, else of minutes, widened so that the life fits in a few hundred buckets.",
    "Buckets in which nothing was done are left out. Failed chunks and reduce chunks are not counted.",
  ].join("\n"),
  security: security.creator,
  request: { params: taskIdParams },
  responses: { 200: { description: "the history", content: { "application/json": { schema: throughputSchema } } }, ...problems(404) },
});

export const taskThroughputRoutes = createRouter().openapi(history, async (c) => {
  const { id } = c.req.valid("param");
  await ownedTask(c, id);
  const found = await taskThroughput(c.var.deps.db, id);
  if (!found) throw notFound("task");
  return c.json(found, 200);
});
