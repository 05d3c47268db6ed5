// Dispatch throughput on one Postgres server, one run, like with like (DESIGN §5): the
// work is queued before the clock starts, synchronous_commit is on, each side has a pool
// of 10 connections, and every client runs on this machine's cores.
//   (a) raw: our db modules (lease + submit) called directly, batches of 32 and 64
//   (b) http: the whole API in its own process (JWT, JSON, signed lease ids), volunteers
//       posting results with `next`, 64-chunk leases
//   (c) graphile-worker, batched (localQueue + batched completion), no-op jobs
// Usage: npx node bench/dispatch.bench.ts [chunks]   (DATABASE_URL, default the local server)
import { mkdirSync, writeFileSync } from "node:fs";
import { createTask, createUser, createVolunteer, leaseChunks, reclaimExpiredLeases, submitChunks } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { createTestDatabase, dropDatabase, taskFixture, leaseRef, leaseRequest } from "@crowdcompute/db/testing";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { adminUrl, databaseName, drainTask, keepAliveClient, startApiProcess, startRangeTask, volunteerTokens } from "./api-process.ts";

const chunks = Number(process.argv[2] ?? 40_000);
const clients = 16;
const poolSize = 10;

type Row = { path: string; chunks: number; seconds: number; perSecond: number; note: string };
const rows: Row[] = [];
const record = (path: string, count: number, ms: number, note: string) => {
  const row = { path, chunks: count, seconds: ms / 1000, perSecond: Math.round(count / (ms / 1000)), note };
  rows.push(row);
  console.error(`  ${path}: ${row.perSecond.toLocaleString("en")} chunks/s`);
};

async function rawPath(batch: number) {
  const url = await createTestDatabase(adminUrl);
  const { db, close } = createPostgresDb(url, { max: poolSize });
  try {
    const owner = await createUser(db, { email: "bench@example.com", passwordHash: "x", firstIsAdmin: false });
    await createTask(db, taskFixture(owner!.id, { name: "bench", maxAttempts: 5, inputs: { kind: "range", start: 0, end: chunks, step: 1, size: 1 } }));
    const volunteers = await Promise.all(Array.from({ length: clients }, () => createVolunteer(db, { name: "v", userId: null })));
    let done = 0;
    const started = performance.now();
    await Promise.all(volunteers.map(async (v, shard) => {
      for (;;) {
        await reclaimExpiredLeases(db, shard % 16);
        const leased = await leaseChunks(db, leaseRequest(v.id, { max: batch, threads: 4 }));
        if (leased.length === 0) return;
        const out = await submitChunks(db, {
          volunteerId: v.id, shard: shard % 16, errors: [],
          results: leased.map((c) => ({ ...leaseRef(c), result: "0", cpuMs: 1 })),
        });
        done += out.inserted;
      }
    }));
    if (done !== chunks) throw new Error(`raw path finished ${done} of ${chunks}`);
    record(`(a) raw db modules, batch ${batch}`, chunks, performance.now() - started, `${clients} concurrent lessees, pool ${poolSize}`);
  } finally {
    await close();
    await dropDatabase(adminUrl, databaseName(url));
  }
}

async function httpPath() {
  const url = await createTestDatabase(adminUrl);
  const server = await startApiProcess(url);
  try {
    const client = keepAliveClient(server.base, clients);
    await startRangeTask(client, "bench", chunks);
    const tokens = await volunteerTokens(client, clients);
    const started = performance.now();
    const accepted = (await Promise.all(tokens.map((token) => drainTask(client, token)))).reduce((a, b) => a + b, 0);
    if (accepted !== chunks) throw new Error(`http path accepted ${accepted} of ${chunks}`);
    record("(b) HTTP API, 64-chunk leases", chunks, performance.now() - started, `${clients} volunteer clients (node:http keep-alive), server pool ${poolSize}, one Node process (the npm start bundle)`);
  } finally {
    await server.stop();
    await dropDatabase(adminUrl, databaseName(url));
  }
}

async function graphileWorker() {
  const url = await createTestDatabase(adminUrl);
  try {
    // Its default logger writes a line per job, which would measure the terminal, not the queue.
    const logger = new Logger(() => () => {});
    const utils = await makeWorkerUtils({ connectionString: url, logger });
    await utils.migrate();
    for (let offset = 0; offset < chunks; offset += 10_000) {
      const n = Math.min(10_000, chunks - offset);
      await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
    }
    await utils.release();
    let completed = 0;
    let finish!: () => void;
    const allDone = new Promise<void>((resolve) => (finish = resolve));
    const started = performance.now();
    // Our own pool, ended before the database is dropped (else its idle clients error out).
    const pgPool = new pg.Pool({ connectionString: url, max: poolSize });
    const runner = await run({
      pgPool,
      concurrency: clients,
      noHandleSignals: true,
      pollInterval: 1000,
      taskList: { noop: async () => {} },
      logger,
      preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    } as Parameters<typeof run>[0]);
    runner.events.on("job:success", () => {
      if (++completed === chunks) finish();
    });
    await allDone;
    const elapsed = performance.now() - started;
    await runner.stop();
    await pgPool.end();
    record("(c) graphile-worker, batched", chunks, elapsed, `concurrency ${clients}, pool ${poolSize}, localQueue 500, completeJobBatchDelay 0`);
  } finally {
    await dropDatabase(adminUrl, databaseName(url));
  }
}

console.error(`dispatch benchmark: ${chunks.toLocaleString("en")} chunks on ${adminUrl.replace(/\/\/[^@]*@/, "//")}`);
// BENCH_ONLY=http (or raw, graphile) runs one side, e.g. while profiling.
const only = process.env.BENCH_ONLY;
if (!only || only === "raw") {
  await rawPath(32);
  await rawPath(64);
}
if (!only || only === "http") await httpPath();
if (!only || only === "graphile") await graphileWorker();

const byPath = (prefix: string) => rows.find((row) => row.path.startsWith(prefix))?.perSecond ?? Number.NaN;
const raw64 = rows.find((row) => row.path.includes("batch 64"))?.perSecond ?? Number.NaN;
console.log("\n| path | chunks | seconds | chunks/s | setup |\n|---|---|---|---|---|");
for (const row of rows) console.log(`| ${row.path} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${row.note} |`);
const ratios = { httpOverGraphile: byPath("(b)") / byPath("(c)"), httpOverRaw64: byPath("(b)") / raw64 };
console.log(`\nHTTP / graphile-worker = ${ratios.httpOverGraphile.toFixed(2)}× (target ≥ 1.5×); HTTP / raw batch 64 = ${(ratios.httpOverRaw64 * 100).toFixed(0)} % (target ≥ 60 %)`);
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/dispatch.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), chunks, clients, poolSize, rows, ratios }, null, 2));
