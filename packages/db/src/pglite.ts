import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import type { Db, DbHandle } from "./db.ts";
import * as schema from "./schema.ts";

/**
 * Opens an embedded PGlite database: in memory without `dataDir`, else stored there.
 * The caller holds the directory lock (see `lockDataDir`): PGlite allows one process.
 */
export async function createPgliteDb(dataDir?: string): Promise<DbHandle & { client: PGlite }> {
  const client = dataDir ? new PGlite(dataDir) : new PGlite();
  await client.waitReady;
  const db = drizzle(client, { schema }) as unknown as Db;
  return { db, client, kind: "pglite", close: () => client.close() };
}
