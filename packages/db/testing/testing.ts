// Node-only test support: a fresh database per test file, on PGlite (always) and on the
// Postgres server named by DATABASE_URL (when set). Server databases are cloned from a
// template migrated once per migration set, so files can run in parallel.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import type { Db } from "../src/db.ts";
import { leaseBlocks } from "../src/dispatch/lease.ts";
import type { GrantedBlock, LeaseRequest } from "../src/dispatch/lease-types.ts";
import { type ChunkRef, type ResultRun, type SubmitOutcome, submitResults } from "../src/dispatch/submit.ts";
import type { DbHandle } from "../src/handle.ts";
import { migratePgliteDb, migratePostgresUrl, migrationsFolder } from "../src/migrate.ts";
import { createPgliteDb } from "../src/pglite.ts";
import { createPostgresDb } from "../src/postgres.ts";
import type { NewTask } from "../src/tasks/tasks.ts";

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
  for (const file of readdirSync(migrationsFolder)
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
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

/** One chunk of a leased block, as db tests look at leases one chunk at a time. */
export interface LeasedChunk extends Omit<GrantedBlock, "inputsJson"> {
  index: number;
  /** The chunk's input as JSON text. */
  input: string;
}

/** `leaseBlocks`, each block spread into its chunks. */
export async function leaseChunks(db: Db, request: LeaseRequest): Promise<LeasedChunk[]> {
  return (await leaseBlocks(db, request)).flatMap(({ inputsJson, ...block }) =>
    (JSON.parse(inputsJson) as unknown[]).map((input, o) => ({ ...block, index: block.firstIdx + o, input: JSON.stringify(input) })),
  );
}

/** A chunk as a volunteer reports it (the API decodes all but the index from the lease id). */
export interface TestChunkRef extends ChunkRef {
  /** The first index of the chunk's lease. */
  firstIdx: number;
}

/** The reference a volunteer reports a leased chunk under. */
export function leaseRef(chunk: LeasedChunk): TestChunkRef {
  return { leaseRowId: chunk.leaseRowId, taskId: chunk.taskId, index: chunk.index, firstIdx: chunk.firstIdx };
}

/**
 * `submitResults` for tests that think in chunks: consecutive results of one lease become
 * one run, as a volunteer reporting a block would send them (their cpuMs summed).
 */
export function submitChunks(
  db: Db,
  input: {
    volunteerId: string;
    userId?: string | null;
    shard: number;
    results: (TestChunkRef & { result: string; cpuMs: number })[];
    errors: (ChunkRef & { kind: string; message: string; cpuMs: number })[];
  },
): Promise<SubmitOutcome> {
  const runs: (Omit<ResultRun, "resultsJson" | "count"> & { results: string[] })[] = [];
  for (const r of input.results) {
    const last = runs.at(-1);
    if (last && last.leaseRowId === r.leaseRowId && last.firstIdx + last.offset + last.results.length === r.index) {
      last.results.push(r.result);
      last.cpuMs += r.cpuMs;
    } else runs.push({ leaseRowId: r.leaseRowId, taskId: r.taskId, firstIdx: r.firstIdx, offset: r.index - r.firstIdx, results: [r.result], cpuMs: r.cpuMs });
  }
  const errors = input.errors.map(({ leaseRowId, taskId, index, kind, message, cpuMs }) => ({ leaseRowId, taskId, index, kind, message, cpuMs }));
  return submitResults(db, {
    volunteerId: input.volunteerId,
    userId: input.userId ?? null,
    shard: input.shard,
    runs: runs.map(({ results, ...run }) => ({ ...run, count: results.length, resultsJson: `[${results.join(",")}]` })),
    errors,
  });
}

/** A lease request of a volunteer with no user, no WebGPU and no exclusions. */
export function leaseRequest(volunteerId: string, overrides: Partial<LeaseRequest> = {}): LeaseRequest {
  return { volunteerId, userId: null, max: 64, threads: 1, webgpu: false, excludeTasks: [], excludeCreators: [], graceMs: 30_000, ...overrides };
}
