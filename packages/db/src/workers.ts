import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { createDbHandle, type DbHandle } from "./handle.ts";
import * as schema from "./schema.ts";

/**
 * A database for one Workers request: one TCP connection (Workers cannot keep sockets
 * between requests), and no `fetch_types` round trip on connect (no array types are used).
 * Under workerd, `postgres` resolves to its `cloudflare:sockets` build.
 * @example const { db, close } = createWorkersDb(env.DATABASE_URL); try { ... } finally { ctx.waitUntil(close()) }
 */
export function createWorkersDb(url: string): DbHandle {
  const client = postgres(url, { max: 1, fetch_types: false, prepare: true, onnotice: () => {}, connect_timeout: 10 });
  const db = drizzle(client, { schema }) as unknown as DbHandle["db"];
  return createDbHandle(db, "postgres", () => client.end({ timeout: 5 }));
}
