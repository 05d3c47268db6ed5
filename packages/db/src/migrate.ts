// Node-only: reads the reviewed SQL files in /migrations.
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import type { DbHandle } from "./handle.ts";
import { createPostgresDb } from "./postgres.ts";

export const migrationsFolder = fileURLToPath(new URL("../../../migrations", import.meta.url));

// Any 64-bit constant; all processes migrating one database agree on it.
const migrationLockKey = 7_305_118_214;

/** Applies pending migrations to an embedded database. */
export async function migratePgliteDb(handle: DbHandle): Promise<void> {
  await migratePglite(handle.db as never, { migrationsFolder });
}

/**
 * Applies pending migrations to a server. One connection of its own holds an advisory
 * lock throughout, so processes starting together take turns instead of racing.
 */
export async function migratePostgresUrl(url: string): Promise<void> {
  const handle = createPostgresDb(url, { max: 1 });
  try {
    await handle.db.execute(sql`SELECT pg_advisory_lock(${migrationLockKey})`);
    await migratePostgres(handle.db as never, { migrationsFolder });
    await handle.db.execute(sql`SELECT pg_advisory_unlock(${migrationLockKey})`);
  } finally {
    await handle.close();
  }
}
