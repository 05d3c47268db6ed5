// GET /metrics for the operator. The app only reports and guards: the runtime
// that can keep figures in memory (Node, with prom-client) passes `AppMetrics` to createApp;
// without it, as on Workers, /metrics is 404.
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppEnv } from "../env.ts";
import type { AppContext } from "./context.ts";
import { notFound, unauthorized } from "./problem.ts";
import type { WorkObserver } from "./work-observer.ts";

export interface AppMetrics {
  work: WorkObserver;
  /** The Prometheus text exposition, figures from the database read now. */
  render(): Promise<{ contentType: string; text: string }>;
}

/** Seconds since `startedAt`, a `performance.now()` reading (both runtimes have it). */
export const secondsSince = (startedAt: number) => (performance.now() - startedAt) / 1000;

/**
 * Serves `metrics` to a caller with `Authorization: Bearer <METRICS_TOKEN>`. Not served
 * (404) until METRICS_TOKEN is set, nor where the runtime keeps no metrics.
 */
export function metricsHandler(env: AppEnv, metrics: AppMetrics | undefined) {
  return async (c: AppContext) => {
    if (!env.metricsToken || !metrics) throw notFound("route");
    const match = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
    if (!match || !(await timingSafeEqual(match[1]!, env.metricsToken))) {
      throw unauthorized("GET /metrics needs Authorization: Bearer <METRICS_TOKEN>");
    }
    const { contentType, text } = await metrics.render();
    return c.body(text, 200, { "content-type": contentType, "cache-control": "no-store" });
  };
}
