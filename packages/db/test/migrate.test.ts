// Migrations are safe to run from several processes at once (API processes starting together,
// `npm run migrate` beside them): the advisory lock makes them take turns, so every run
// succeeds and each migration is applied exactly once.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgresUrl, migrationsFolder } from "../src/migrate.ts";
import { type DisposablePostgres, startDisposablePostgres } from "../testing/disposable-postgres.ts";

const migrateCli = fileURLToPath(new URL("../src/migrate-cli.ts", import.meta.url));
const migrationCount = (JSON.parse(readFileSync(join(migrationsFolder, "meta", "_journal.json"), "utf8")) as { entries: unknown[] }).entries.length;

function runMigrateCli(databaseUrl: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [migrateCli], { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (data: Buffer) => (output += data.toString()));
    child.stderr.on("data", (data: Buffer) => (output += data.toString()));
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe("migrations from several processes at once", () => {
  let disposable: DisposablePostgres | null = null;
  let serverUrl: string;
  let admin: postgres.Sql;
  const created: string[] = [];

  beforeAll(async () => {
    // The shared server when there is one; else a throwaway cluster of our own.
    if (process.env.DATABASE_URL) serverUrl = process.env.DATABASE_URL;
    else serverUrl = (disposable = await startDisposablePostgres()).url;
    admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    for (const name of created) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin?.end({ timeout: 5 });
    disposable?.destroy();
  });

  async function freshDatabase(): Promise<string> {
    const name = `cc_migrate_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
    await admin.unsafe(`CREATE DATABASE ${name}`);
    created.push(name);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }

  async function appliedMigrations(url: string) {
    const db = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await db`SELECT count(*)::int AS runs, count(DISTINCT hash)::int AS distinct_runs FROM drizzle.__drizzle_migrations`;
      const tables = await db`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`;
      return { runs: row!.runs as number, distinctRuns: row!.distinct_runs as number, tables: tables.map((t) => t.table_name as string) };
    } finally {
      await db.end({ timeout: 5 });
    }
  }

  it("4 `npm run migrate` processes on a fresh database all succeed, each migration applied once", { timeout: 60_000 }, async () => {
    const url = await freshDatabase();
    const runs = await Promise.all(Array.from({ length: 4 }, () => runMigrateCli(url)));
    for (const run of runs) expect(run, run.output).toMatchObject({ code: 0 });
    const applied = await appliedMigrations(url);
    expect(applied).toMatchObject({ runs: migrationCount, distinctRuns: migrationCount });
    expect(applied.tables).toEqual(expect.arrayContaining(["tasks", "leases", "results", "chunk_state", "task_counters", "volunteers", "users"]));
  });

  it("8 connections migrating one fresh database at the same moment all succeed, and a later run changes nothing", { timeout: 60_000 }, async () => {
    const url = await freshDatabase();
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => migratePostgresUrl(url)));
    expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
    const applied = await appliedMigrations(url);
    expect(applied).toMatchObject({ runs: migrationCount, distinctRuns: migrationCount });
    await migratePostgresUrl(url);
    expect(await appliedMigrations(url)).toEqual(applied);
  });
});
