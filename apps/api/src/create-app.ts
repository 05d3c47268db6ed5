import { type Db, notifyWorkReady } from "@crowdcompute/db";
import type { AppEnv } from "./env.ts";
import { apiReferencePage, docsScriptUrl as defaultDocsScriptUrl, tagOperations } from "./lib/api-docs.ts";
import { type AppContext, createRouter, type Deps } from "./lib/context.ts";
import type { HmacSha256 } from "./lib/hmac.ts";
import { createLeaseIds } from "./lib/lease-ids.ts";
import { limitJsonBodies, readBodies } from "./lib/limits.ts";
import { type ChangeFeed, pollingFeed } from "./lib/live.ts";
import { type AppMetrics, metricsHandler } from "./lib/metrics.ts";
import { createMinterCache, type MinterCache } from "./lib/minters.ts";
import { multipartTaskBodies, multipartTaskForm } from "./lib/multipart-task.ts";
import { documentErrors, securitySchemes } from "./lib/openapi.ts";
import { sandboxOrigins } from "./lib/origins.ts";
import { forbidden, notFound, renderError } from "./lib/problem.ts";
import { createProcessBounds, type ProcessBounds } from "./lib/process-bounds.ts";
import { cspNonce, docsPageCsp, securityHeaders } from "./lib/security-headers.ts";
import { throughProxies } from "./lib/sources.ts";
import { createTaskNotifier } from "./lib/task-notifier.ts";
import { createStreamTickets } from "./lib/tickets.ts";
import { createTokens } from "./lib/tokens.ts";
import { unobservedWork } from "./lib/work-observer.ts";
import type { WorkWaiters } from "./lib/work-waiters.ts";
import { adminRoutes } from "./routes/admin/admin.index.ts";
import { authRoutes } from "./routes/auth/auth.index.ts";
import { configRoutes } from "./routes/config/config.index.ts";
import { healthRoutes } from "./routes/health/health.index.ts";
import { keyRoutes } from "./routes/keys/keys.index.ts";
import { statsRoutes } from "./routes/stats/stats.index.ts";
import { taskRoutes } from "./routes/tasks/tasks.index.ts";
import { ticketRoutes } from "./routes/tickets/tickets.index.ts";
import { volunteerRoutes } from "./routes/volunteers/volunteers.index.ts";
import { workRoutes } from "./routes/work/work.index.ts";

export interface AppOptions {
  db: Db;
  env: AppEnv;
  /** How live streams hear of changes; the Node entry passes a LISTEN feed. Default: polling each second. */
  changes?: ChangeFeed;
  /** The client's IP address, for per-IP limits; each runtime knows it its own way. Default: unknown (no per-IP limits). */
  clientIp?: (c: AppContext) => string | null;
  /** Where /api/docs loads its script. Default: /api/docs/scalar.js, which each entry serves from its build. */
  docsScriptUrl?: string;
  /** Operator metrics for GET /metrics (the Node entry passes prom-client's). Default: none, /metrics is 404. */
  metrics?: AppMetrics;
  /** HMAC-SHA-256 for lease ids (the Node entry passes node:crypto's: a tenth of WebCrypto's cost). Default: WebCrypto. */
  hmac?: HmacSha256;
  /** What volunteer tokens' accounts and keys were last seen as; Workers pass one that outlives the request's app. Default: this app's own. */
  minters?: MinterCache;
  /** What the process holds for its callers at once (lib/process-bounds.ts); Workers pass one per isolate. Default: this app's own, from `env.bounds`. */
  bounds?: ProcessBounds;
  /** Where lease requests wait for work (`waitMs`); the Node entry passes LISTEN-woken ones. Default: none, they are answered at once. */
  waiters?: WorkWaiters | null;
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
export function createApp({
  db,
  env,
  changes = pollingFeed(),
  clientIp = () => null,
  docsScriptUrl = defaultDocsScriptUrl,
  metrics,
  hmac,
  minters = createMinterCache(),
  bounds = createProcessBounds(env.bounds),
  waiters = null,
}: AppOptions) {
  const deps: Deps = {
    db,
    env,
    tokens: createTokens(env.jwtSecret, hmac),
    leaseIds: createLeaseIds(env.jwtSecret, hmac),
    tickets: createStreamTickets(env.jwtSecret),
    changes,
    clientIp: throughProxies(clientIp, env.trustedProxies),
    taskChanged: createTaskNotifier(db),
    // Work appearing is notified within 100 ms of a burst's last change, the first at once.
    workReady: createTaskNotifier(db, notifyWorkReady, 100),
    waiters,
    work: metrics?.work ?? unobservedWork,
    minters,
    bounds,
  };
  const refusedOrigins = new Set(sandboxOrigins(env));
  const app = createRouter();
  app.use("*", securityHeaders(env));
  app.use("/api/*", async (c, next) => {
    const origin = c.req.header("origin");
    if (origin && refusedOrigins.has(origin)) throw forbidden("requests from the sandbox origin are refused");
    c.set("deps", deps);
    await next();
  });
  app.use("/api/*", readBodies);
  app.use("/api/tasks", multipartTaskBodies);
  app.use("/api/*", limitJsonBodies);
  app.route("/", healthRoutes);
  app.route("/", configRoutes);
  app.route("/", authRoutes);
  app.route("/", volunteerRoutes);
  app.route("/", taskRoutes);
  app.route("/", workRoutes);
  app.route("/", keyRoutes);
  app.route("/", statsRoutes);
  app.route("/", ticketRoutes);
  app.route("/", adminRoutes);
  for (const [name, scheme] of Object.entries(securitySchemes)) app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  let openApiDocument: ReturnType<typeof app.getOpenAPI31Document> | null = null;
  app.get("/api/openapi.json", (c) => {
    if (!openApiDocument) {
      // No document-wide `security`: each operation says its own (lib/openapi.ts), none for sign-up, sign-in, stats and health.
      openApiDocument = documentErrors(tagOperations(app.getOpenAPI31Document({ openapi: "3.1.0", info: apiInfo })), { $ref: "#/components/schemas/Problem" });
      // The routes' own error answers (lib/openapi.ts, problems) put the contract's Problem schema there.
      if (!openApiDocument.components?.schemas?.Problem) throw new Error("no operation names the Problem schema");
      // The form is turned into the JSON body before validation (lib/multipart-task.ts): documented here.
      const createTask = openApiDocument.paths?.["/api/tasks"]?.post?.requestBody;
      if (createTask && "content" in createTask) createTask.content["multipart/form-data"] = { schema: multipartTaskForm };
    }
    return c.json(openApiDocument);
  });
  app.get("/api/docs", (c) => {
    // The page's inline script runs by this response's nonce: see lib/security-headers.ts.
    const nonce = cspNonce();
    c.header("content-security-policy", docsPageCsp(nonce));
    return c.html(apiReferencePage({ title: `${apiInfo.title} reference`, nonce, scriptUrl: docsScriptUrl }));
  });
  app.get("/metrics", metricsHandler(env, metrics));
  // The fallback of every API path no route took: a problem, not the web app's page. Hono tries
  // routes in the order they were added, so it stays last; the routes themselves claim distinct paths.
  app.all("/api/*", () => {
    throw notFound("route");
  });
  app.onError(renderError);
  return app;
}

export type App = ReturnType<typeof createApp>;
