// A task's upkeep: retry its failed chunks, clone it, delete it (docs/architecture.md, "Rooms").

import { cloneTaskSchema, decodeBase64, taskSchema } from "@crowdcompute/contract";
import { type CloneChanges, cloneTask, deleteTask, getTaskView, retryFailedChunks } from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../lib/context.ts";
import { problems, security } from "../../lib/openapi.ts";
import { conflict, notFound, unprocessable } from "../../lib/problem.ts";
import { ownedTask } from "../../lib/task-access.ts";
import { checkWorkCode, sha256Hex, wasmWithSha256 } from "../../lib/work-code.ts";
import { taskJson } from "./tasks.handlers.ts";
import { taskIdParams as params } from "./tasks.routes.ts";

const taskResponse = { content: { "application/json": { schema: z.object({ task: taskSchema }) } } };

const retryFailed = createRoute({
  method: "post",
  path: "/api/tasks/{id}/retry-failed",
  summary: "Retry failed chunks",
  description: "Give every failed chunk a fresh set of attempts",
  security: security.creator,
  request: { params },
  responses: {
    200: {
      description: "the task, running again if it had finished, and how many failed chunks were reopened",
      content: { "application/json": { schema: z.object({ task: taskSchema, reopened: z.number().int() }) } },
    },
    ...problems(404, 409),
  },
});

const clone = createRoute({
  method: "post",
  path: "/api/tasks/{id}/clone",
  summary: "Clone a task",
  description: "A new draft with the same inputs; code, name and options are copied unless given",
  security: security.creator,
  request: { params, body: { content: { "application/json": { schema: cloneTaskSchema } }, required: false } },
  responses: { 201: { description: "the new draft", ...taskResponse }, ...problems(404) },
});

const remove = createRoute({
  method: "delete",
  path: "/api/tasks/{id}",
  summary: "Delete a task",
  description: "Delete a task with its inputs and results",
  security: security.creator,
  request: { params },
  responses: { 204: { description: "deleted" }, ...problems(404) },
});

export const taskMaintenanceRoutes = createRouter()
  .openapi(retryFailed, async (c) => {
    const { id } = c.req.valid("param");
    const { access } = await ownedTask(c, id);
    const reopened = await retryFailedChunks(c.var.deps.db, id);
    if (reopened === null) throw conflict(`a ${access.status} task has no failed chunks to retry`);
    c.var.deps.taskChanged([id]);
    c.var.deps.workReady([id]);
    return c.json({ task: taskJson((await getTaskView(c.var.deps.db, id))!), reopened }, 200);
  })
  .openapi(clone, async (c) => {
    const { id } = c.req.valid("param");
    const { claims } = await ownedTask(c, id);
    const { code: newCode, wasm, ...options } = c.req.valid("json") ?? {};
    let code: { code: string; codeSha256: string; hasReduce: boolean } | undefined;
    if (newCode !== undefined) {
      const exports = checkWorkCode(newCode);
      code = { code: newCode, codeSha256: await sha256Hex(newCode), hasReduce: exports.includes("reduce") };
    }
    if (options.replication !== undefined || options.quorum !== undefined) {
      const source = (await getTaskView(c.var.deps.db, id))!;
      if ((options.quorum ?? source.quorum) > (options.replication ?? source.replication)) {
        throw unprocessable("quorum must be at most replication", [{ path: "body.quorum", message: "quorum must be at most replication" }]);
      }
    }
    const changes: CloneChanges = { ...options };
    if (wasm !== undefined) changes.wasm = await wasmWithSha256(decodeBase64(wasm));
    const cloneId = await cloneTask(c.var.deps.db, { taskId: id, ownerId: claims.sub, ...(code ? { code } : {}), changes });
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
