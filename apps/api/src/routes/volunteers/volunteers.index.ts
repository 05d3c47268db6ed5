import { createRoute, z } from "@hono/zod-openapi";
import { createVolunteer, getVolunteerFigures } from "@crowdcompute/db";
import { storableText } from "../../lib/text.ts";
import { authorize, createRouter, creatorRoles, volunteerRoles } from "../../lib/context.ts";
import { notFound } from "../../lib/problem.ts";
import { signupWindowMs, spendLimit } from "../../lib/limits.ts";

const body = z.object({ name: storableText().trim().min(1).max(100).optional() }).strict();
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
    429: { description: "too many volunteer identities from this address; see Retry-After" },
  },
});

const me = createRoute({
  method: "get",
  path: "/api/volunteers/me",
  summary: "The calling volunteer's own figures: chunks done, CPU time and credit",
  responses: {
    200: {
      description: "the volunteer's figures",
      content: {
        "application/json": {
          schema: z.object({ id: z.string(), name: z.string(), chunksDone: z.number(), cpuMs: z.number(), credit: z.number() }),
        },
      },
    },
  },
});

export const volunteerRoutes = createRouter()
  .openapi(me, async (c) => {
    const claims = await authorize(c, volunteerRoles);
    const figures = await getVolunteerFigures(c.var.deps.db, claims.sub);
    if (!figures) throw notFound("volunteer");
    return c.json(figures, 200);
  })
  .openapi(create, async (c) => {
  const { db, env, tokens } = c.var.deps;
  const owner = c.req.header("authorization") ? await authorize(c, creatorRoles) : null;
  const userId = owner?.sub ?? null;
  const input = c.req.valid("json") ?? {};
  const ip = c.var.deps.clientIp(c);
  if (ip) await spendLimit(c, `volunteers:ip:${ip}`, env.limits.volunteersPerIp, signupWindowMs, "volunteer identities from this address");
  // An admin's own volunteers start trusted (DESIGN §5); everyone else starts on probation.
  const row = await createVolunteer(db, { name: input.name ?? "anonymous volunteer", userId, trusted: owner?.role === "admin" });
  const token = await tokens.sign({ sub: row.id, role: "volunteer", ...(userId ? { uid: userId } : {}) });
  return c.json({ token, volunteer: { id: row.id, name: row.name, userId: row.userId } }, 201);
});
