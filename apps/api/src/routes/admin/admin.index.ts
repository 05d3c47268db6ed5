import { accountSchema } from "@crowdcompute/contract";
import { notifyTaskChanged } from "@crowdcompute/db";
import { type AccountRow, approveUser, listAccounts, suspendUser, unsuspendUser } from "@crowdcompute/db/accounts";
import { createRoute, z } from "@hono/zod-openapi";
import { type AppContext, authorize, createRouter } from "../../lib/context.ts";
import { problems, security } from "../../lib/openapi.ts";
import { conflict, notFound } from "../../lib/problem.ts";
import { uuidPattern } from "../../lib/task-access.ts";

const list = createRoute({
  method: "get",
  path: "/api/admin/users",
  tags: ["admin"],
  security: security.admin,
  summary: "List accounts",
  description: "Accounts, newest first; `status=pending` lists creators waiting for approval",
  request: {
    query: z
      .object({
        status: z.enum(["pending", "suspended"]).optional(),
        cursor: z.string().regex(uuidPattern).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
      })
      .strict(),
  },
  responses: {
    200: {
      description: "a page of accounts",
      content: { "application/json": { schema: z.object({ items: z.array(accountSchema), nextCursor: z.string().nullable() }) } },
    },
  },
});

const action = createRoute({
  method: "post",
  path: "/api/admin/users/{id}/{action}",
  tags: ["admin"],
  security: security.admin,
  summary: "Approve or suspend a creator",
  description: "Approve a creator, or suspend one (its running tasks are paused) or lift a suspension",
  request: { params: z.object({ id: z.string(), action: z.enum(["approve", "suspend", "unsuspend"]) }) },
  responses: {
    200: {
      description: "done; for a suspension, the tasks it paused",
      content: { "application/json": { schema: z.object({ ok: z.literal(true), pausedTasks: z.array(z.string()).optional() }) } },
    },
    ...problems(404, 409),
  },
});

const admin = (c: AppContext) => authorize(c, ["admin"]);

const accountJson = (row: AccountRow) => ({
  id: row.id,
  email: row.email,
  role: row.role,
  createdAt: row.createdAt.toISOString(),
  approvedAt: row.approvedAt?.toISOString() ?? null,
  suspendedAt: row.suspendedAt?.toISOString() ?? null,
});

export const adminRoutes = createRouter()
  .openapi(list, async (c) => {
    await admin(c);
    const { status, cursor, limit } = c.req.valid("query");
    const rows = await listAccounts(c.var.deps.db, { status: status ?? null, before: cursor ?? null, limit });
    const nextCursor = rows.length === limit ? rows[rows.length - 1]!.id : null;
    return c.json({ items: rows.map(accountJson), nextCursor }, 200);
  })
  .openapi(action, async (c) => {
    await admin(c);
    const { id, action } = c.req.valid("param");
    const { db } = c.var.deps;
    if (!uuidPattern.test(id)) throw notFound("account");
    if (action === "approve") {
      if (!(await approveUser(db, id))) throw notFound("account");
      return c.json({ ok: true as const }, 200);
    }
    if (action === "unsuspend") {
      if (!(await unsuspendUser(db, id))) throw notFound("account");
      c.var.deps.minters.forget();
      return c.json({ ok: true as const }, 200);
    }
    const paused = await suspendUser(db, id);
    if (!paused) throw conflict("no such creator: admins cannot be suspended");
    c.var.deps.minters.forget(); // its volunteers stop here now, elsewhere within the cache's TTL
    await notifyTaskChanged(db, paused);
    return c.json({ ok: true as const, pausedTasks: paused }, 200);
  });
