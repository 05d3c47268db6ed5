// Node-only test support: a fresh database per test file, on PGlite (always) and on the
// Postgres server named by DATABASE_URL (when set). Server databases are cloned from a
// template migrated once per migration set, so files can run in parallel.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import type { DbHandle } from "./db.ts";
import type { LeasedChunk, LeaseRequest } from "./lease.ts";
import type { LeaseRef } from "./submit.ts";
import type { NewTask } from "./tasks.ts";
import { migratePgliteDb, migratePostgresUrl, migrationsFolder } from "./migrate.ts";
import { createPgliteDb } from "./pglite.ts";
import { createPostgresDb } from "./postgres.ts";

export type Backend = "pglite" | "postgres";

export interface TestDb {
  backend: Backend;
  handle: DbHandle;
  /** The server database's URL (postgres only). */
  url: string | null;
  /** Closes the handle and drops the database. */
  dispose(): Promise<void>;
}

/** PGlite always; the real server too when DATABASE_URL is set (then it must work: no skipping). */
export function testBackends(env: Record<string, string | undefined> = process.env): Backend[] {
  return env.DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];
}

export async function openTestDb(backend: Backend, env: Record<string, string | undefined> = process.env): Promise<TestDb> {
  if (backend === "pglite") {
    const handle = await createPgliteDb();
    await migratePgliteDb(handle);
    return { backend, handle, url: null, dispose: () => handle.close() };
  }
  const adminUrl = env.DATABASE_URL;
  if (!adminUrl) throw new Error("DATABASE_URL is not set");
  const url = await createTestDatabase(adminUrl);
  const handle = createPostgresDb(url, { max: 10 });
  return {
    backend,
    handle,
    url,
    dispose: async () => {
      await handle.close();
      await dropDatabase(adminUrl, new URL(url).pathname.slice(1));
    },
  };
}

function migrationsHash(): string {
  const hash = createHash("sha256");
  for (const file of readdirSync(migrationsFolder).filter((f) => f.endsWith(".sql")).sort()) {
    hash.update(file).update(readFileSync(join(migrationsFolder, file)));
  }
  return hash.digest("hex").slice(0, 12);
}

function withDatabase(url: string, name: string): string {
  const next = new URL(url);
  next.pathname = `/${name}`;
  return next.toString();
}

/** Creates `cc_test_<random>` from the template of the current migrations, making that first. */
export async function createTestDatabase(adminUrl: string): Promise<string> {
  const template = `cc_template_${migrationsHash()}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin`SELECT pg_advisory_lock(918273645)`;
    const [exists] = await admin`SELECT 1 FROM pg_database WHERE datname = ${template}`;
    if (!exists) {
      const building = `${template}_building`;
      await admin.unsafe(`DROP DATABASE IF EXISTS ${building}`);
      await admin.unsafe(`CREATE DATABASE ${building}`);
      await migratePostgresUrl(withDatabase(adminUrl, building));
      await admin.unsafe(`ALTER DATABASE ${building} RENAME TO ${template}`);
    }
    const name = `cc_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
    await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    await admin`SELECT pg_advisory_unlock(918273645)`;
    return withDatabase(adminUrl, name);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

export { freePort, freePortPair } from "./disposable-postgres.ts";

/** A task to create in tests and benches: small defaults, overridden as needed. */
export function taskFixture(ownerId: string, overrides: Partial<NewTask> = {}): NewTask {
  return {
    ownerId,
    name: "t",
    description: "",
    code: "export default (x) => x",
    codeSha256: "0".repeat(64),
    priority: 0,
    replication: 1,
    quorum: 1,
    timeoutMs: 60_000,
    maxAttempts: 3,
    requires: {},
    allowUsers: null,
    inputs: { kind: "array", items: Array.from({ length: 10 }, (_, i) => ({ n: i })) },
    start: true,
    ...overrides,
  };
}

/** The lease reference a volunteer reports a leased chunk under (the API decodes it from the lease id). */
export function leaseRef(chunk: LeasedChunk): LeaseRef {
  return { leaseRowId: chunk.leaseRowId, taskId: chunk.taskId, index: chunk.index };
}

/** A lease request of a volunteer with no user, no WebGPU and no exclusions. */
export function leaseRequest(volunteerId: string, overrides: Partial<LeaseRequest> = {}): LeaseRequest {
  return { volunteerId, userId: null, max: 64, threads: 1, webgpu: false, excludeTasks: [], excludeCreators: [], graceMs: 30_000, ...overrides };
}
