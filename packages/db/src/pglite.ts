import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import type { Db } from "./db.ts";
import { createDbHandle, type DbHandle } from "./handle.ts";
import * as schema from "./schema.ts";

/**
 * Postgres settings for the embedded database. It runs inside the server's own process, and
 * what it allocates is WebAssembly memory, which never shrinks: with Postgres' defaults
 * (128 MB of shared buffers among them) `npm start` sat at ~460 MB RSS idle. A single-user
 * database of one install needs far less (docs/architecture.md, Memory). The WAL is kept small
 * too: nothing replicates it, and it was most of a data directory that reached 1.2 GB.
 */
const embeddedSettings: Record<string, string> = {
  shared_buffers: "16MB",
  work_mem: "4MB",
  maintenance_work_mem: "16MB",
  temp_buffers: "2MB",
  wal_buffers: "1MB",
  min_wal_size: "32MB",
  max_wal_size: "64MB",
};

/**
 * Opens an embedded PGlite database: in memory without `dataDir`, else stored there.
 * The caller holds the directory lock (see `lockDataDir`): PGlite allows one process.
 * A directory that holds no database yet is made (and migrated) in a child process first:
 * initdb runs in WebAssembly memory of its own, ~400 MB that the server kept resident after
 * its first start (674 MB RSS idle, against 225 MB on the next start).
 */
export async function createPgliteDb(dataDir?: string, { initialized = false } = {}): Promise<DbHandle & { client: PGlite }> {
  if (dataDir && !initialized && !existsSync(join(dataDir, "PG_VERSION"))) initializeInChild(dataDir);
  const startParams = [...PGlite.defaultStartParams, ...Object.entries(embeddedSettings).flatMap(([name, value]) => ["-c", `${name}=${value}`])];
  const client = dataDir ? new PGlite(dataDir, { startParams }) : new PGlite({ startParams });
  await client.waitReady;
  const db = drizzle(client, { schema }) as unknown as Db;
  return { ...createDbHandle(db, "pglite", () => client.close()), client };
}

function initializeInChild(dataDir: string): void {
  const script = fileURLToPath(new URL("./pglite-init.ts", import.meta.url));
  const child = spawnSync(process.execPath, [script, dataDir], { stdio: ["ignore", "inherit", "inherit"] });
  if (child.status !== 0) throw new Error(`could not create the embedded database in ${dataDir} (exit ${child.status ?? child.signal})`);
}
