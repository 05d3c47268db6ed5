// What the task resource's operations do (their schemas: tasks.routes.ts).
import { decodeBase64, type Task } from "@crowdcompute/contract";
import {
  createTask,
  getTaskAccess,
  getTaskCode,
  getTaskSummary,
  getTaskView,
  getTaskWasm,
  listTaskViews,
  notifyTaskChanged,
  type TaskView,
  transitionTask,
  volunteerMayReadTask,
} from "@crowdcompute/db";
import { type AppContext, authorize, creatorRoles, type AppRouteHandler as Handler, volunteerRoles } from "../../lib/context.ts";
import { conflict, notFound } from "../../lib/problem.ts";
import { ownedTask, uuidPattern } from "../../lib/task-access.ts";
import { checkWorkCode, sha256Hex, wasmWithSha256 } from "../../lib/work-code.ts";
import type * as routes from "./tasks.routes.ts";

/** The task as the API shows it: the db's view without its owner's id and input kind, dates as ISO text. */
export function taskJson(view: TaskView): Task {
  const { ownerId: _owner, inputKind: _kind, createdAt, finishedAt, ...rest } = view;
  return { ...rest, createdAt: createdAt.toISOString(), finishedAt: finishedAt?.toISOString() ?? null };
}

export const create: Handler<typeof routes.create> = async (c) => {
  const claims = await authorize(c, creatorRoles);
  const { code, wasm, inputs, range, ...options } = c.req.valid("json");
  const exports = checkWorkCode(code);
  const id = await createTask(c.var.deps.db, {
    ...options,
    ownerId: claims.sub,
    code,
    codeSha256: await sha256Hex(code),
    hasReduce: exports.includes("reduce"),
    wasm: wasm === undefined ? null : await wasmWithSha256(decodeBase64(wasm)),
    inputs: inputs ? { kind: "array", items: inputs } : range ? { kind: "range", ...range } : { kind: "ndjson" },
  });
  const view = await getTaskView(c.var.deps.db, id);
  // Created running (`start: true`): volunteers waiting for work take it now.
  if (view?.status === "running") c.var.deps.workReady([id]);
  return c.json({ task: taskJson(view!) }, 201);
};

export const list: Handler<typeof routes.list> = async (c) => {
  const claims = await authorize(c, creatorRoles);
  const { cursor, limit } = c.req.valid("query");
  const views = await listTaskViews(c.var.deps.db, {
    ownerId: claims.role === "admin" ? null : claims.sub,
    before: cursor ?? null,
    limit,
  });
  const nextCursor = views.length === limit ? views[views.length - 1]!.id : null;
  return c.json({ items: views.map(taskJson), nextCursor }, 200);
};

export const get: Handler<typeof routes.get> = async (c) => {
  const { id } = c.req.valid("param");
  await ownedTask(c, id);
  const view = await getTaskView(c.var.deps.db, id);
  if (!view) throw notFound("task");
  return c.json({ task: taskJson(view) }, 200);
};

export const lifecycle: Handler<typeof routes.lifecycle> = async (c) => {
  const { id, action } = c.req.valid("param");
  const { access } = await ownedTask(c, id);
  if (!(await transitionTask(c.var.deps.db, id, action))) {
    throw conflict(`cannot ${action} a task that is ${access.status}`);
  }
  await notifyTaskChanged(c.var.deps.db, [id]); // live streams show the new status now
  if (action === "start" || action === "resume") c.var.deps.workReady([id]); // and waiting volunteers take its chunks
  const view = await getTaskView(c.var.deps.db, id);
  return c.json({ task: taskJson(view!) }, 200);
};

export const summary: Handler<typeof routes.summary> = async (c) => {
  const { id } = c.req.valid("param");
  await authorizeReader(c, id);
  const row = await getTaskSummary(c.var.deps.db, id);
  if (!row) throw notFound("task");
  return c.json(row, 200);
};

export const code: Handler<typeof routes.code> = async (c) => {
  const { id } = c.req.valid("param");
  await authorizeReader(c, id);
  const row = await getTaskCode(c.var.deps.db, id);
  if (!row) throw notFound("task");
  return immutable(c, row.codeSha256, "text/javascript; charset=utf-8", row.code) as never;
};

export const wasm: Handler<typeof routes.wasm> = async (c) => {
  const { id } = c.req.valid("param");
  await authorizeReader(c, id);
  const row = await getTaskWasm(c.var.deps.db, id);
  if (!row) throw notFound("task wasm");
  return immutable(c, row.wasmSha256, "application/wasm", row.wasm as Uint8Array<ArrayBuffer>) as never;
};

/** A task's code or module: named by its sha256 (the ETag), so a volunteer's browser keeps it for good. */
function immutable(c: AppContext, sha256: string, contentType: string, body: string | Uint8Array<ArrayBuffer>): Response {
  const etag = `"${sha256}"`;
  const headers = { etag, "cache-control": "private, max-age=31536000, immutable", "content-type": contentType };
  if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers);
  return c.body(body, 200, headers);
}

/**
 * Who may read a task's code, WebAssembly and summary: its owner, an admin, and a volunteer
 * that may run it now or holds a lease on it. Anyone else gets the 404 of a missing id, so
 * that neither another creator nor a fresh anonymous token can read drafts, allow-listed
 * tasks or other people's code, nor tell which ids exist (docs/architecture.md, "Bounds on what one caller holds").
 */
async function authorizeReader(c: AppContext, id: string): Promise<void> {
  const claims = await authorize(c, [...volunteerRoles, ...creatorRoles]);
  if (!uuidPattern.test(id)) throw notFound("task");
  if (claims.role === "admin") return;
  if (claims.role === "volunteer") {
    const may = await volunteerMayReadTask(c.var.deps.db, { taskId: id, volunteerId: claims.sub, userId: claims.uid ?? null });
    if (!may) throw notFound("task");
    return;
  }
  const access = await getTaskAccess(c.var.deps.db, id);
  if (!access || access.ownerId !== claims.sub) throw notFound("task");
}
