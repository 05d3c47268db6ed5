import type { Db } from "@crowdcompute/db";
import type { AppEnv } from "./env.ts";
import { createRouter } from "./lib/context.ts";
import { createLeaseIds } from "./lib/lease-ids.ts";
import { forbidden, notFound, renderError } from "./lib/problem.ts";
import { sandboxOrigins } from "./lib/origins.ts";
import { createTokens } from "./lib/tokens.ts";
import { authRoutes } from "./routes/auth/auth.index.ts";
import { configRoutes } from "./routes/config/config.index.ts";
import { healthRoutes } from "./routes/health/health.index.ts";
import { taskRoutes } from "./routes/tasks/tasks.index.ts";
import { volunteerRoutes } from "./routes/volunteers/volunteers.index.ts";
import { workRoutes } from "./routes/work/work.index.ts";

/**
 * The whole HTTP API as one Hono app, for the Node entry, the Workers entry and tests alike.
 * It imports nothing from `node:`: runtimes pass in what they have.
 * @example const app = createApp({ db, env }); const res = await app.request("/api/health");
 */
export function createApp({ db, env }: { db: Db; env: AppEnv }) {
  const deps = { db, env, tokens: createTokens(env.jwtSecret), leaseIds: createLeaseIds(env.jwtSecret) };
  const refusedOrigins = new Set(sandboxOrigins(env));
  const app = createRouter();
  app.use("/api/*", async (c, next) => {
    const origin = c.req.header("origin");
    if (origin && refusedOrigins.has(origin)) throw forbidden("requests from the sandbox origin are refused");
    c.set("deps", deps);
    await next();
  });
  app.route("/", healthRoutes);
  app.route("/", configRoutes);
  app.route("/", authRoutes);
  app.route("/", volunteerRoutes);
  app.route("/", taskRoutes);
  app.route("/", workRoutes);
  app.all("/api/*", () => {
    throw notFound("route");
  });
  app.onError(renderError);
  return app;
}

export type App = ReturnType<typeof createApp>;
