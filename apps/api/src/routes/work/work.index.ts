// The volunteer side of the API (/api/work/*): its routes (work.routes.ts) and their handlers
// (work.handlers.ts), and what runs before them: a volunteer's heartbeats one at a time, and
// the depth of every body checked before it is parsed (docs/architecture.md, "Rooms").
import { oneBeatAtATime } from "@crowdcompute/db";
import type { MiddlewareHandler } from "hono";
import { type AppBindings, authorize, createRouter, volunteerRoles } from "../../lib/context.ts";
import { jsonTextTooDeep, maxBodyDepth, maxJsonDepth } from "../../lib/json-limits.ts";
import { tooManyRequests, unprocessable } from "../../lib/problem.ts";
import * as handlers from "./work.handlers.ts";
import * as routes from "./work.routes.ts";

/**
 * Bodies nested deeper than the JSON limits are refused before they are parsed into values:
 * a result nested 150,000 levels deep once got past the API and wedged its task's reduce. The
 * scan reads the text once (hono keeps it for the validator's parse).
 */
const boundDepth: MiddlewareHandler<AppBindings> = async (c, next) => {
  const at = jsonTextTooDeep(await c.req.text(), maxBodyDepth);
  if (at >= 0) {
    throw unprocessable(`the body is nested deeper than ${maxBodyDepth} levels of arrays and objects (at character ${at + 1}): a result or input may nest ${maxJsonDepth}`, [
      { path: "body", message: `nested deeper than ${maxBodyDepth} levels` },
    ]);
  }
  await next();
};

/**
 * A volunteer's heartbeats are handled one at a time in this process (one more may wait), from
 * before the body is read (docs/architecture.md, "Bounds on what one volunteer holds"). Beats
 * of one block wait on each other's row locks in Postgres, each holding a pooled connection:
 * sixteen at once, with checkpoints, took the pool from everyone else. Beyond that, a 429 with
 * Retry-After, before the body is parsed; the page and the CLI send one beat at a time.
 */
const oneBeatAtATimePerVolunteer: MiddlewareHandler<AppBindings> = async (c, next) => {
  const claims = await authorize(c, volunteerRoles);
  const turn = oneBeatAtATime(c.var.deps.db, claims.sub, () => next());
  if (!turn) throw tooManyRequests("this volunteer's previous heartbeats are still being handled: send one at a time", 1000);
  await turn;
};

const router = createRouter();
router.use("/api/work/heartbeat", oneBeatAtATimePerVolunteer);
router.use("/api/work/*", boundDepth);

export const workRoutes = router
  .openapi(routes.lease, handlers.lease)
  .openapi(routes.results, handlers.results)
  .openapi(routes.heartbeat, handlers.heartbeat)
  .openapi(routes.release, handlers.release);
