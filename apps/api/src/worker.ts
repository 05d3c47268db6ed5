// Cloudflare Workers entry: the same Hono app as on Node, with a database
// client per request over TCP (Workers keep no sockets between requests), no migrations
// (run `npm run migrate` against the database first), and polling for live streams.
// Configuration comes from the bindings: `wrangler dev --var DATABASE_URL:… --var JWT_SECRET:…`,
// or `wrangler secret put` in production.
import { createWorkersDb } from "@crowdcompute/db";
import { createApp } from "./create-app.ts";
import { type AppEnv, type ParsedEnv, parseEnv } from "./env.ts";
import { pollingFeed } from "./lib/live.ts";
import { createMinterCache } from "./lib/minters.ts";
import { createProcessBounds, type ProcessBounds } from "./lib/process-bounds.ts";

interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

let parsed: { bindings: object; env: ParsedEnv } | null = null;

function envOf(bindings: Record<string, unknown>): AppEnv {
  if (parsed?.bindings !== bindings) parsed = { bindings, env: parseEnv(bindings) };
  const env = parsed.env;
  if (!env.databaseUrl || !env.jwtSecret) throw new Error("Invalid environment:\n  DATABASE_URL and JWT_SECRET are required on Workers");
  return { ...env, jwtSecret: env.jwtSecret, embedded: false };
}

const changes = pollingFeed();
// The app is built per request here: the cache must live in the isolate, not in the app.
const minters = createMinterCache();
// And so must what the isolate holds for its callers at once (lib/process-bounds.ts).
let bounds: ProcessBounds | null = null;

export default {
  async fetch(request: Request, bindings: Record<string, unknown>, ctx: ExecutionContextLike): Promise<Response> {
    const env = envOf(bindings);
    const handle = createWorkersDb(env.databaseUrl!);
    const app = createApp({
      db: handle.db,
      env,
      changes,
      minters,
      bounds: (bounds ??= createProcessBounds(env.bounds)),
      // Set by Cloudflare (and by wrangler dev) to the client's address; a client cannot override it.
      clientIp: (c) => c.req.header("cf-connecting-ip") ?? null,
    });
    let response: Response;
    try {
      response = await app.fetch(request, bindings, ctx as never);
    } catch (error) {
      ctx.waitUntil(handle.close());
      throw error;
    }
    if (!response.body) {
      ctx.waitUntil(handle.close());
      return response;
    }
    // Streams (results downloads, Server-Sent Events) keep querying after the handler
    // returns: the connection closes when the body ends or the client goes away.
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    ctx.waitUntil(
      response.body
        .pipeTo(writable)
        .catch(() => {})
        .finally(() => handle.close()),
    );
    return new Response(readable, response);
  },
};
