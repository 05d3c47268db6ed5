import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../../lib/context.ts";
import { security } from "../../lib/openapi.ts";
import { sandboxOriginForRequest } from "../../lib/origins.ts";

const config = createRoute({
  method: "get",
  path: "/api/config",
  security: security.none,
  summary: "Web app configuration",
  description: "What the web app needs to know: where the sandbox frame lives",
  responses: {
    200: { description: "client configuration", content: { "application/json": { schema: z.object({ sandboxOrigin: z.string() }) } } },
  },
});

export const configRoutes = createRouter().openapi(config, (c) => c.json({ sandboxOrigin: sandboxOriginForRequest(c.var.deps.env, new URL(c.req.url)) }, 200));
