import { leaderboardEntrySchema, siteStatsSchema as statsSchema } from "@crowdcompute/contract";
import type { Db } from "@crowdcompute/db";
import { type LeaderboardEntry, leaderboard, type SiteStats, siteStats } from "@crowdcompute/db/reads";
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { releaseWith, takeStreamSlot } from "../../lib/bounds.ts";
import { createRouter } from "../../lib/context.ts";
import { sleep } from "../../lib/live.ts";
import { security } from "../../lib/openapi.ts";

const stats = createRoute({
  method: "get",
  path: "/api/stats",
  security: security.none,
  tags: ["stats"],
  summary: "Site-wide figures",
  description: "Site-wide figures: tasks by status, chunks done, throughput, volunteers online, CPU time",
  request: { query: z.object({}).strict() },
  responses: { 200: { description: "the figures (at most 1 s old)", content: { "application/json": { schema: statsSchema } } } },
});

const board = createRoute({
  method: "get",
  path: "/api/leaderboard",
  security: security.none,
  tags: ["stats"],
  summary: "Leaderboard",
  description: "Top contributors by credit, then chunks done",
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(25) }).strict() },
  responses: {
    200: { description: "the top entries", content: { "application/json": { schema: z.object({ items: z.array(leaderboardEntrySchema) }) } } },
  },
});

const statsEvents = createRoute({
  method: "get",
  path: "/api/stats/events",
  security: security.none,
  tags: ["stats"],
  summary: "Follow site-wide figures (SSE)",
  description: "Server-Sent Events: `stats` with the figures of GET /api/stats, each second they change",
  request: { query: z.object({}).strict() },
  responses: { 200: { description: "an event stream", content: { "text/event-stream": { schema: z.string() } } } },
});

// Every reader in this process shares one query a second, however many pages watch.
const cacheMs = 1_000;
const statsCache = new WeakMap<Db, { at: number; value: Promise<SiteStats & { at: string }> }>();
const boardCache = new WeakMap<Db, Map<number, { at: number; value: Promise<LeaderboardEntry[]> }>>();

function cachedStats(db: Db): Promise<SiteStats & { at: string }> {
  const hit = statsCache.get(db);
  if (hit && Date.now() - hit.at < cacheMs) return hit.value;
  const value = siteStats(db).then((s) => ({ ...s, at: new Date().toISOString() }));
  statsCache.set(db, { at: Date.now(), value });
  value.catch(() => statsCache.delete(db));
  return value;
}

function cachedBoard(db: Db, limit: number): Promise<LeaderboardEntry[]> {
  let byLimit = boardCache.get(db);
  if (!byLimit) boardCache.set(db, (byLimit = new Map()));
  const hit = byLimit.get(limit);
  if (hit && Date.now() - hit.at < cacheMs) return hit.value;
  const value = leaderboard(db, limit);
  byLimit.set(limit, { at: Date.now(), value });
  value.catch(() => byLimit.delete(limit));
  return value;
}

export const statsRoutes = createRouter()
  .openapi(stats, async (c) => c.json(await cachedStats(c.var.deps.db), 200))
  .openapi(board, async (c) => c.json({ items: await cachedBoard(c.var.deps.db, c.req.valid("query").limit) }, 200))
  .openapi(statsEvents, (c) => {
    const db = c.var.deps.db;
    // Anyone may watch: bounded per network source instead (lib/bounds.ts).
    const release = takeStreamSlot(c, null);
    const response = streamSSE(c, async (stream) => {
      const stop = new AbortController();
      stream.onAbort(() => stop.abort());
      let last = "";
      let lastWrite = Date.now();
      for (let id = 0; !stop.signal.aborted; ) {
        const { at: _at, ...figures } = await cachedStats(db);
        const data = JSON.stringify(figures);
        if (data !== last) {
          await stream.writeSSE({ event: "stats", data, id: String(id++) });
          last = data;
          lastWrite = Date.now();
        } else if (Date.now() - lastWrite > 15_000) {
          await stream.write(": keep-alive\n\n");
          lastWrite = Date.now();
        }
        await sleep(cacheMs, stop.signal);
      }
    });
    return releaseWith(response, release) as never;
  });
