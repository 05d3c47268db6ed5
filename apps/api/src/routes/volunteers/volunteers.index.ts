import { createRoute, z } from "@hono/zod-openapi";
import { createVolunteer } from "@crowdcompute/db";
import { authorize, createRouter, creatorRoles } from "../../lib/context.ts";

const body = z.object({ name: z.string().trim().min(1).max(100).optional() }).strict();
const volunteer = z.object({ id: z.string(), name: z.string(), userId: z.string().nullable() });

const create = createRoute({
  method: "post",
  path: "/api/volunteers",
  summary: "Create a volunteer identity (linked to the signed-in user, if any)",
  request: { body: { content: { "application/json": { schema: body } }, required: false } },
  responses: {
    201: {
      description: "a long-lived volunteer token (1 year)",
      content: { "application/json": { schema: z.object({ token: z.string(), volunteer }) } },
    },
  },
});

export const volunteerRoutes = createRouter().openapi(create, async (c) => {
  const { db, tokens } = c.var.deps;
  const userId = c.req.header("authorization") ? (await authorize(c, creatorRoles)).sub : null;
  const input = c.req.valid("json") ?? {};
  const row = await createVolunteer(db, { name: input.name ?? "anonymous volunteer", userId });
  const token = await tokens.sign({ sub: row.id, role: "volunteer", ...(userId ? { uid: userId } : {}) });
  return c.json({ token, volunteer: { id: row.id, name: row.name, userId: row.userId } }, 201);
});
