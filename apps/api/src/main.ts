// Node entry: `npm start`. Embedded PGlite under DATA_DIR unless DATABASE_URL names a server.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DbHandle } from "@crowdcompute/db";
import { lockDataDir } from "@crowdcompute/db/data-dir";
import { migratePgliteDb, migratePostgresUrl } from "@crowdcompute/db/migrate";
import { createPgliteDb } from "@crowdcompute/db/pglite";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { type AppEnv, parseEnv } from "./env.ts";
import { adminBootstrapNotice } from "./lib/admin-bootstrap.ts";
import { startServer } from "./node/server.ts";

/** The embedded mode keeps a generated secret under the data directory, so tokens survive restarts. */
function embeddedSecret(dataDir: string): string {
  const path = join(dataDir, "jwt-secret");
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(path, secret, { mode: 0o600 });
  return secret;
}

async function main() {
  const parsed = parseEnv(process.env);
  let handle: DbHandle;
  let release = async () => {};
  let jwtSecret = parsed.jwtSecret;
  if (parsed.databaseUrl) {
    await migratePostgresUrl(parsed.databaseUrl);
    handle = createPostgresDb(parsed.databaseUrl);
  } else {
    mkdirSync(parsed.dataDir, { recursive: true });
    release = await lockDataDir(parsed.dataDir);
    handle = await createPgliteDb(join(parsed.dataDir, "pglite"));
    await migratePgliteDb(handle);
    jwtSecret ??= embeddedSecret(parsed.dataDir);
  }
  const env: AppEnv = { ...parsed, jwtSecret: jwtSecret!, embedded: !parsed.databaseUrl };
  const server = await startServer({ db: handle.db, env });
  const database = parsed.databaseUrl ? "Postgres server (DATABASE_URL)" : `embedded PGlite in ${parsed.dataDir}`;
  // Only the operator reads this log: the token in it makes an admin of a server install.
  const notice = await adminBootstrapNotice(handle.db, env).catch(() => null);
  if (notice) console.log(notice);
  console.log(`CrowdCompute is running at ${server.url}  (sandbox on port ${server.sandboxPort}, ${database})`);

  let stopping = false;
  const stop = async (signal: string) => {
    // A repeated signal changes nothing: `npm start` forwards Ctrl-C's SIGINT, which the
    // process may also get from the terminal, and the wait is bounded anyway.
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: shutting down (requests in flight have up to ${env.shutdownTimeoutMs} ms to finish)`);
    try {
      await server.close();
      await handle.close();
      await release();
      process.exit(0);
    } catch (error) {
      console.error(`shutdown failed: ${error instanceof Error ? error.message : error}`);
      process.exit(1);
    }
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
