import { pingDb } from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../lib/context.ts";
import { security } from "../../lib/openapi.ts";
import { ProblemError } from "../../lib/problem.ts";

const dbTimeoutMs = 2_000;

const health = createRoute({
  method: "get",
  path: "/api/health",
  security: security.none,
  summary: "Liveness, with a database round trip",
  responses: {
    200: {
      description: "the API and its database answer",
      content: { "application/json": { schema: z.object({ status: z.literal("ok"), db: z.literal("ok") }) } },
    },
    503: { description: "the database does not answer" },
  },
});

export const healthRoutes = createRouter().openapi(health, async (c) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([pingDb(c.var.deps.db), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("timed out")), dbTimeoutMs)))]);
  } catch (error) {
    throw new ProblemError(503, "Service unavailable", `database unreachable: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return c.json({ status: "ok" as const, db: "ok" as const }, 200);
});
