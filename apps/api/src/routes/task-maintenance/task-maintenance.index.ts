import { createRoute, z } from "@hono/zod-openapi";
import { cloneTask, deleteTask, getTaskView, retryFailedChunks } from "@crowdcompute/db";
import { createRouter } from "../../lib/context.ts";
import { conflict, notFound } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { checkWorkCode, sha256Hex } from "../../lib/work-code.ts";
import { taskJson } from "../tasks/tasks.index.ts";
import { maxCodeBytes, taskSchema } from "../tasks/tasks.schemas.ts";

const params = z.object({ id: z.string() });
const taskResponse = { content: { "application/json": { schema: z.object({ task: taskSchema }) } } };

const retryFailed = createRoute({
  method: "post",
  path: "/api/tasks/{id}/retry-failed",
  summary: "Give every failed chunk a fresh set of attempts",
  request: { params },
  responses: { 200: { description: "the task, running again if it had finished", ...taskResponse } },
});

const clone = createRoute({
  method: "post",
  path: "/api/tasks/{id}/clone",
  summary: "A new draft with the same inputs and options, optionally with new code",
  request: {
    params,
    body: {
      content: {
        "application/json": {
          schema: z
            .object({ code: z.string().min(1).refine((code) => new TextEncoder().encode(code).length <= maxCodeBytes, "code must be at most 1 MiB").optional() })
            .strict(),
        },
      },
      required: false,
    },
  },
  responses: { 201: { description: "the new draft", ...taskResponse } },
});

const remove = createRoute({
  method: "delete",
  path: "/api/tasks/{id}",
  summary: "Delete a task with its inputs and results",
  request: { params },
  responses: { 204: { description: "deleted" } },
});

export const taskMaintenanceRoutes = createRouter()
  .openapi(retryFailed, async (c) => {
    const { id } = c.req.valid("param");
    const { access } = await ownedTask(c, id);
    const reopened = await retryFailedChunks(c.var.deps.db, id);
    if (reopened === null) throw conflict(`a ${access.status} task has no failed chunks to retry`);
    c.var.deps.taskChanged([id]);
    return c.json({ task: taskJson((await getTaskView(c.var.deps.db, id))!) }, 200);
  })
  .openapi(clone, async (c) => {
    const { id } = c.req.valid("param");
    const { claims } = await ownedTask(c, id);
    const body = c.req.valid("json") ?? {};
    let code: { code: string; codeSha256: string; hasReduce: boolean } | undefined;
    if (body.code !== undefined) {
      const exports = checkWorkCode(body.code);
      code = { code: body.code, codeSha256: await sha256Hex(body.code), hasReduce: exports.includes("reduce") };
    }
    const cloneId = await cloneTask(c.var.deps.db, { taskId: id, ownerId: claims.sub, ...(code ? { code } : {}) });
    if (!cloneId) throw notFound("task");
    return c.json({ task: taskJson((await getTaskView(c.var.deps.db, cloneId))!) }, 201);
  })
  .openapi(remove, async (c) => {
    const { id } = c.req.valid("param");
    await ownedTask(c, id);
    if (!(await deleteTask(c.var.deps.db, id))) throw notFound("task");
    c.var.deps.taskChanged([id]);
    return c.body(null, 204);
  });
