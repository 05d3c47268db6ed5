// The task resource and everything under /api/tasks/{id}: its routes (tasks.routes.ts), their
// handlers (tasks.handlers.ts), and each sub-resource's router. One router, mounted once by
// create-app.ts; no route here claims another's path, so the order below does not matter
// (docs/architecture.md, "Rooms").
import { createRouter } from "../../lib/context.ts";
import { taskChunkRoutes } from "./chunks.index.ts";
import { taskEventRoutes } from "./events.index.ts";
import { inputRoutes } from "./inputs.index.ts";
import { taskMaintenanceRoutes } from "./maintenance.index.ts";
import { resultRoutes } from "./results.index.ts";
import * as handlers from "./tasks.handlers.ts";
import * as routes from "./tasks.routes.ts";
import { lifecycleRoutingPath } from "./tasks.routes.ts";
import { taskThroughputRoutes } from "./throughput.index.ts";

export const taskRoutes = createRouter()
  .openapi(routes.create, handlers.create)
  .openapi(routes.list, handlers.list)
  .openapi(routes.get, handlers.get)
  .openapi(routes.summary, handlers.summary)
  .openapi(routes.code, handlers.code)
  .openapi(routes.wasm, handlers.wasm)
  .route("/", resultRoutes)
  .route("/", inputRoutes)
  .route("/", taskChunkRoutes)
  .route("/", taskThroughputRoutes)
  .route("/", taskMaintenanceRoutes)
  .route("/", taskEventRoutes);

// The lifecycle operation's `{action}` would claim every other POST /api/tasks/{id}/<name> had it
// been added first (create-app once had to mount those before it): it is routed around their
// names instead (tasks.routes.ts, lifecycleRoutingPath), and documented as declared.
const siblings = taskRoutes.routes.flatMap(({ method, path }) => (method === "POST" ? (/^\/api\/tasks\/:id\/([^/:]+)$/.exec(path)?.[1] ?? []) : []));
taskRoutes.openapi({ ...routes.lifecycle, path: lifecycleRoutingPath(siblings), hide: true } as typeof routes.lifecycle, handlers.lifecycle);
taskRoutes.openAPIRegistry.registerPath(routes.lifecycle);
