import type { Db } from "@crowdcompute/db";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv } from "./env.ts";
import { createRouter, type AppContext, type Deps } from "./lib/context.ts";
import { createLeaseIds, type HmacSha256 } from "./lib/lease-ids.ts";
import { createTaskNotifier } from "./lib/task-notifier.ts";
import { limitBodies } from "./lib/limits.ts";
import { metricsHandler, unobservedWork, type AppMetrics } from "./lib/metrics.ts";
import { pollingFeed, type ChangeFeed } from "./lib/live.ts";
import { multipartTaskBodies, multipartTaskForm } from "./lib/multipart-task.ts";
import { forbidden, notFound, renderError } from "./lib/problem.ts";
import { sandboxOrigins } from "./lib/origins.ts";
import { createStreamTickets } from "./lib/tickets.ts";
import { createTokens } from "./lib/tokens.ts";
import { adminRoutes } from "./routes/admin/admin.index.ts";
import { authRoutes } from "./routes/auth/auth.index.ts";
import { configRoutes } from "./routes/config/config.index.ts";
import { healthRoutes } from "./routes/health/health.index.ts";
import { keyRoutes } from "./routes/keys/keys.index.ts";
import { liveRoutes } from "./routes/live/live.index.ts";
import { statsRoutes } from "./routes/stats/stats.index.ts";
import { inputRoutes } from "./routes/inputs/inputs.index.ts";
import { taskMaintenanceRoutes } from "./routes/task-maintenance/task-maintenance.index.ts";
import { taskChunkRoutes } from "./routes/tasks/task-chunks.index.ts";
import { taskRoutes } from "./routes/tasks/tasks.index.ts";
import { volunteerRoutes } from "./routes/volunteers/volunteers.index.ts";
import { workRoutes } from "./routes/work/work.index.ts";

export interface AppOptions {
  db: Db;
  env: AppEnv;
  /** How live streams hear of changes; the Node entry passes a LISTEN feed. Default: polling each second. */
  changes?: ChangeFeed;
  /** The client's IP address, for per-IP limits; each runtime knows it its own way. Default: unknown (no per-IP limits). */
  clientIp?: (c: AppContext) => string | null;
  /** Where /api/docs loads its script; the Node entry serves it itself. Default: the Scalar CDN. */
  docsScriptUrl?: string;
  /** Operator metrics for GET /metrics (the Node entry passes prom-client's). Default: none, /metrics is 404. */
  metrics?: AppMetrics;
  /** HMAC-SHA-256 for lease ids (the Node entry passes node:crypto's: a tenth of WebCrypto's cost). Default: WebCrypto. */
  hmac?: HmacSha256;
}

export const apiInfo = {
  title: "CrowdCompute API",
  version: "0.1.0",
  description:
    "Browser-volunteer computing: creators post tasks, volunteers lease chunks and post results. " +
    "Authenticate with `Authorization: Bearer <token>` (a session JWT from /api/auth, a volunteer token " +
    "from /api/volunteers, or a creator's API key `cc_…` from /api/keys). Errors are `application/problem+json`.",
};

/**
 * The whole HTTP API as one Hono app, for the Node entry, the Workers entry and tests alike.
 * It imports nothing from `node:`: runtimes pass in what they have.
 * @example const app = createApp({ db, env }); const res = await app.request("/api/health");
 */
export function createApp({ db, env, changes = pollingFeed(), clientIp = () => null, docsScriptUrl, metrics, hmac }: AppOptions) {
  const deps: Deps = {
    db,
    env,
    tokens: createTokens(env.jwtSecret),
    leaseIds: createLeaseIds(env.jwtSecret, hmac),
    tickets: createStreamTickets(env.jwtSecret),
    changes,
    clientIp,
    taskChanged: createTaskNotifier(db),
    work: metrics?.work ?? unobservedWork,
  };
  const refusedOrigins = new Set(sandboxOrigins(env));
  const app = createRouter();
  app.use("/api/*", async (c, next) => {
    const origin = c.req.header("origin");
    if (origin && refusedOrigins.has(origin)) throw forbidden("requests from the sandbox origin are refused");
    c.set("deps", deps);
    await next();
  });
  app.use("/api/*", limitBodies);
  app.use("/api/tasks", multipartTaskBodies);
  app.route("/", healthRoutes);
  app.route("/", configRoutes);
  app.route("/", authRoutes);
  app.route("/", volunteerRoutes);
  // Before taskRoutes, whose /api/tasks/{id}/{action} would otherwise claim inputs, retry-failed and clone.
  app.route("/", taskMaintenanceRoutes);
  app.route("/", inputRoutes);
  app.route("/", taskChunkRoutes);
  app.route("/", taskRoutes);
  app.route("/", workRoutes);
  app.route("/", keyRoutes);
  app.route("/", statsRoutes);
  app.route("/", liveRoutes);
  app.route("/", adminRoutes);
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "a session JWT, a volunteer token, or an API key `cc_…`",
  });
  let openApiDocument: ReturnType<typeof app.getOpenAPI31Document> | null = null;
  app.get("/api/openapi.json", (c) => {
    if (!openApiDocument) {
      // No document-wide `security`: sign-up, sign-in, stats and health need no credential.
      openApiDocument = app.getOpenAPI31Document({ openapi: "3.1.0", info: apiInfo });
      // The form is turned into the JSON body before validation (lib/multipart-task.ts): documented here.
      const createTask = openApiDocument.paths?.["/api/tasks"]?.post?.requestBody;
      if (createTask && "content" in createTask) createTask.content["multipart/form-data"] = { schema: multipartTaskForm };
    }
    return c.json(openApiDocument);
  });
  app.get("/api/docs", Scalar({ url: "/api/openapi.json", pageTitle: apiInfo.title, ...(docsScriptUrl ? { cdn: docsScriptUrl } : {}) }));
  app.get("/metrics", metricsHandler(env, metrics));
  app.all("/api/*", () => {
    throw notFound("route");
  });
  app.onError(renderError);
  return app;
}

export type App = ReturnType<typeof createApp>;
