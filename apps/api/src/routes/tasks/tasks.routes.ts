// The task resource's operations: what each takes and answers, for validation and the OpenAPI
// document, from the contract's schemas (packages/contract/src/tasks.ts). The handlers are in
// tasks.handlers.ts, the wiring in tasks.index.ts (docs/architecture.md, "Rooms").

import { lifecycleActions, newTaskSchema, taskSchema, taskSummarySchema } from "@crowdcompute/contract";
import { createRoute, z } from "@hono/zod-openapi";
import { problems, security } from "../../lib/openapi.ts";
import { uuidPattern } from "../../lib/task-access.ts";

export const taskIdParams = z.object({ id: z.string() });
const oneTask = { "application/json": { schema: z.object({ task: taskSchema }) } };

export const create = createRoute({
  method: "post",
  path: "/api/tasks",
  summary: "Create a task",
  description: "Create a task from work code and inputs (a JSON array or a range)",
  security: security.creator,
  request: { body: { content: { "application/json": { schema: newTaskSchema } }, required: true } },
  responses: { 201: { description: "the new task", content: oneTask } },
});

export const list = createRoute({
  method: "get",
  path: "/api/tasks",
  summary: "List tasks",
  description: "The caller's tasks (all tasks for an admin), newest first",
  security: security.creator,
  request: { query: z.object({ cursor: z.string().regex(uuidPattern).optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }).strict() },
  responses: {
    200: {
      description: "a page of tasks",
      content: { "application/json": { schema: z.object({ items: z.array(taskSchema), nextCursor: z.string().nullable() }) } },
    },
  },
});

export const get = createRoute({
  method: "get",
  path: "/api/tasks/{id}",
  summary: "One task with its counts",
  security: security.creator,
  request: { params: taskIdParams },
  responses: { 200: { description: "the task", content: oneTask }, ...problems(404) },
});

export const lifecycle = createRoute({
  method: "post",
  path: "/api/tasks/{id}/{action}",
  summary: "Start, pause, resume or cancel a task",
  security: security.creator,
  request: { params: z.object({ id: z.string(), action: z.enum(lifecycleActions) }) },
  responses: { 200: { description: "the task after the change", content: oneTask }, ...problems(404, 409) },
});

/**
 * Where the lifecycle operation is routed: `{action}` as any one segment but the names the
 * other POST operations under a task have (`/clone`, `/inputs`, …), so that it never claims
 * theirs, in whatever order the routes are added. Any other name still reaches it, and its
 * validation answers 422 naming the actions.
 */
export function lifecycleRoutingPath(siblings: readonly string[]): string {
  const escaped = siblings.map((name) => name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&"));
  return `/api/tasks/{id}/:action{${escaped.length > 0 ? `(?!(?:${escaped.join("|")})$)` : ""}[^/]+}`;
}

export const summary = createRoute({
  method: "get",
  path: "/api/tasks/{id}/summary",
  summary: "A task's public summary",
  description:
    "What a volunteer may know of a task it may run or holds a lease on: name, description, its creator's display name and id (to exclude that creator's tasks); its owner and admins read it too, anyone else gets 404",
  security: security.taskReader,
  request: { params: taskIdParams },
  responses: { 200: { description: "the task's public summary", content: { "application/json": { schema: taskSummarySchema } } }, ...problems(404) },
});

export const code = createRoute({
  method: "get",
  path: "/api/tasks/{id}/code",
  summary: "Download a task's work code",
  description: "The task's work code (immutable; ETag is its sha256); its owner's, an admin's, or a volunteer's that may run it or holds a lease on it; 404 for anyone else",
  security: security.taskReader,
  request: { params: taskIdParams },
  responses: {
    200: { description: "an ES module", content: { "text/javascript": { schema: z.string() } } },
    304: { description: "unchanged since the ETag in If-None-Match" },
    ...problems(404),
  },
});

export const wasm = createRoute({
  method: "get",
  path: "/api/tasks/{id}/wasm",
  summary: "Download a task's WebAssembly module",
  description:
    "The task's WebAssembly module (immutable; ETag is its sha256); 404 when it has none; its owner's, an admin's, or a volunteer's that may run it or holds a lease on it; 404 for anyone else",
  security: security.taskReader,
  request: { params: taskIdParams },
  responses: {
    200: { description: "a WebAssembly module", content: { "application/wasm": { schema: z.string().meta({ format: "binary" }) } } },
    304: { description: "unchanged since the ETag in If-None-Match" },
    ...problems(404),
  },
});
