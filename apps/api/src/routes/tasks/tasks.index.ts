import { createRoute, z } from "@hono/zod-openapi";
import {
  createTask,
  finalChunksDownload,
  getTaskCode,
  getTaskSummary,
  getTaskWasm,
  getTaskForResults,
  getTaskView,
  lifecycleTransitions,
  listTaskViews,
  notifyTaskChanged,
  transitionTask,
  type LifecycleAction,
  type TaskView,
} from "@crowdcompute/db";
import { bodyLimit } from "hono/body-limit";
import { authorize, createRouter, creatorRoles, volunteerRoles } from "../../lib/context.ts";
import { conflict, notFound, ProblemError } from "../../lib/problem.ts";
import { ownedTask, uuidPattern } from "../../lib/task-access.ts";
import { checkWorkCode, sha256Hex } from "../../lib/work-code.ts";
import { createTaskBody, decodeBase64, taskIdParams, taskSchema } from "./tasks.schemas.ts";

const maxTaskBodyBytes = 64 * 1024 * 1024;
/** The task as the API shows it: never the code itself, nor its owner's id. */
export function taskJson(view: TaskView) {
  const { ownerId: _owner, inputKind: _kind, createdAt, finishedAt, ...rest } = view;
  return { ...rest, createdAt: createdAt.toISOString(), finishedAt: finishedAt?.toISOString() ?? null };
}

const create = createRoute({
  method: "post",
  path: "/api/tasks",
  summary: "Create a task from work code and inputs (a JSON array or a range)",
  middleware: [bodyLimit({ maxSize: maxTaskBodyBytes, onError: () => { throw new ProblemError(413, "Payload too large", `a task body may be at most ${maxTaskBodyBytes / 1024 / 1024} MiB`); } })] as const,
  request: { body: { content: { "application/json": { schema: createTaskBody } }, required: true } },
  responses: { 201: { description: "the new task", content: { "application/json": { schema: z.object({ task: taskSchema }) } } } },
});

const list = createRoute({
  method: "get",
  path: "/api/tasks",
  summary: "The caller's tasks (all tasks for an admin), newest first",
  request: { query: z.object({ cursor: z.string().regex(uuidPattern).optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }).strict() },
  responses: {
    200: {
      description: "a page of tasks",
      content: { "application/json": { schema: z.object({ items: z.array(taskSchema), nextCursor: z.string().nullable() }) } },
    },
  },
});

const get = createRoute({
  method: "get",
  path: "/api/tasks/{id}",
  summary: "One task with its counts",
  request: { params: taskIdParams },
  responses: { 200: { description: "the task", content: { "application/json": { schema: z.object({ task: taskSchema }) } } } },
});

const lifecycle = createRoute({
  method: "post",
  path: "/api/tasks/{id}/{action}",
  summary: "Start, pause, resume or cancel a task",
  request: { params: z.object({ id: z.string(), action: z.enum(Object.keys(lifecycleTransitions) as [LifecycleAction, ...LifecycleAction[]]) }) },
  responses: { 200: { description: "the task after the change", content: { "application/json": { schema: z.object({ task: taskSchema }) } } } },
});

const results = createRoute({
  method: "get",
  path: "/api/tasks/{id}/results",
  summary: "Final chunks in index order, streamed as NDJSON (or CSV with ?format=csv)",
  request: { params: taskIdParams, query: z.object({ format: z.enum(["ndjson", "csv"]).default("ndjson") }).strict() },
  responses: {
    200: {
      description: "one line per final chunk: NDJSON {index, input, status, result | error}, or CSV index,status,input,result,error with each cell JSON",
      content: { "application/x-ndjson": { schema: z.string() }, "text/csv": { schema: z.string() } },
    },
  },
});

const summary = createRoute({
  method: "get",
  path: "/api/tasks/{id}/summary",
  summary: "What a volunteer may know of a task it computes for: name, description, its creator's display name and id (to exclude that creator's tasks)",
  request: { params: taskIdParams },
  responses: {
    200: {
      description: "the task's public summary",
      content: {
        "application/json": {
          schema: z.object({ id: z.string(), name: z.string(), description: z.string(), creator: z.string().nullable(), creatorId: z.uuid() }),
        },
      },
    },
  },
});

const code = createRoute({
  method: "get",
  path: "/api/tasks/{id}/code",
  summary: "The task's work code (immutable; ETag is its sha256)",
  request: { params: taskIdParams },
  responses: { 200: { description: "an ES module", content: { "text/javascript": { schema: z.string() } } } },
});

const wasm = createRoute({
  method: "get",
  path: "/api/tasks/{id}/wasm",
  summary: "The task's WebAssembly module (immutable; ETag is its sha256); 404 when it has none",
  request: { params: taskIdParams },
  responses: { 200: { description: "a WebAssembly module", content: { "application/wasm": { schema: z.string().openapi({ format: "binary" }) } } } },
});

export const taskRoutes = createRouter()
  .openapi(create, async (c) => {
    const claims = await authorize(c, creatorRoles);
    const body = c.req.valid("json");
    const exports = checkWorkCode(body.code);
    const id = await createTask(c.var.deps.db, {
      ownerId: claims.sub,
      name: body.name,
      description: body.description,
      code: body.code,
      codeSha256: await sha256Hex(body.code),
      hasReduce: exports.includes("reduce"),
      wasm: body.wasm === undefined ? null : await wasmWithSha256(decodeBase64(body.wasm)),
      priority: body.priority,
      replication: body.replication,
      quorum: body.quorum,
      timeoutMs: body.timeoutMs,
      maxAttempts: body.maxAttempts,
      requires: body.requires,
      allowUsers: body.allowUsers,
      inputs: body.inputs ? { kind: "array", items: body.inputs } : body.range ? { kind: "range", ...body.range } : { kind: "ndjson" },
      start: body.start,
    });
    const view = await getTaskView(c.var.deps.db, id);
    return c.json({ task: taskJson(view!) }, 201);
  })
  .openapi(list, async (c) => {
    const claims = await authorize(c, creatorRoles);
    const { cursor, limit } = c.req.valid("query");
    const views = await listTaskViews(c.var.deps.db, {
      ownerId: claims.role === "admin" ? null : claims.sub,
      before: cursor ?? null,
      limit,
    });
    const nextCursor = views.length === limit ? views[views.length - 1]!.id : null;
    return c.json({ items: views.map(taskJson), nextCursor }, 200);
  })
  .openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    await ownedTask(c, id);
    const view = await getTaskView(c.var.deps.db, id);
    if (!view) throw notFound("task");
    return c.json({ task: taskJson(view) }, 200);
  })
  .openapi(lifecycle, async (c) => {
    const { id, action } = c.req.valid("param");
    const { access } = await ownedTask(c, id);
    if (!(await transitionTask(c.var.deps.db, id, action))) {
      throw conflict(`cannot ${action} a task that is ${access.status}`);
    }
    await notifyTaskChanged(c.var.deps.db, [id]); // live streams show the new status now
    const view = await getTaskView(c.var.deps.db, id);
    return c.json({ task: taskJson(view!) }, 200);
  })
  .openapi(results, async (c) => {
    const { id } = c.req.valid("param");
    const { format } = c.req.valid("query");
    await ownedTask(c, id);
    const db = c.var.deps.db;
    const task = await getTaskForResults(db, id);
    if (!task) throw notFound("task");
    const encoder = new TextEncoder();
    const texts = finalChunksDownload(db, task, format);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (format === "csv") controller.enqueue(encoder.encode("index,status,input,result,error\r\n"));
      },
      async pull(controller) {
        const next = await texts.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      },
      async cancel() {
        await texts.return(undefined);
      },
    });
    const type = format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";
    // The typed-response helpers know no streams; the OpenAPI entry above documents this one.
    return c.body(stream, 200, { "content-type": type, "cache-control": "no-store" }) as never;
  })
  .openapi(summary, async (c) => {
    await authorize(c, [...volunteerRoles, ...creatorRoles]);
    const { id } = c.req.valid("param");
    if (!uuidPattern.test(id)) throw notFound("task");
    const row = await getTaskSummary(c.var.deps.db, id);
    if (!row) throw notFound("task");
    return c.json(row, 200);
  })
  .openapi(code, async (c) => {
    await authorize(c, [...volunteerRoles, ...creatorRoles]);
    const { id } = c.req.valid("param");
    if (!uuidPattern.test(id)) throw notFound("task");
    const row = await getTaskCode(c.var.deps.db, id);
    if (!row) throw notFound("task");
    const etag = `"${row.codeSha256}"`;
    const headers = { etag, "cache-control": "private, max-age=31536000, immutable", "content-type": "text/javascript; charset=utf-8" };
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers) as never;
    return c.body(row.code, 200, headers);
  })
  .openapi(wasm, async (c) => {
    await authorize(c, [...volunteerRoles, ...creatorRoles]);
    const { id } = c.req.valid("param");
    if (!uuidPattern.test(id)) throw notFound("task");
    const row = await getTaskWasm(c.var.deps.db, id);
    if (!row) throw notFound("task wasm");
    const etag = `"${row.wasmSha256}"`;
    const headers = { etag, "cache-control": "private, max-age=31536000, immutable", "content-type": "application/wasm" };
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers) as never;
    return c.body(row.wasm as Uint8Array<ArrayBuffer>, 200, headers) as never;
  });

async function wasmWithSha256(bytes: Uint8Array): Promise<{ bytes: Uint8Array; sha256: string }> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return { bytes, sha256: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("") };
}
