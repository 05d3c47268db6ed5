import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import type { Db } from "./db.ts";
import { createDbHandle, type DbHandle } from "./handle.ts";
import { newId } from "./ids.ts";
import * as schema from "./schema.ts";

/**
 * Connects to a Postgres server.
 * @example const { db, close } = createPostgresDb("postgres://postgres@127.0.0.1:5432/test");
 */
export function createPostgresDb(url: string, options: { max?: number } = {}): DbHandle {
  // A name of its own, so that `dbPoolUse` can find this pool's connections in pg_stat_activity.
  const connection = { application_name: `crowdcompute ${newId()}` };
  const client = postgres(url, { max: options.max ?? 10, onnotice: () => {}, connect_timeout: 10, connection });
  const db = drizzle(client, { schema }) as unknown as Db;
  return createDbHandle(
    db,
    "postgres",
    () => client.end({ timeout: 5 }),
    (text, params) => client.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true }),
  );
}
