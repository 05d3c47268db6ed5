// Dispatch throughput on one Postgres server, one run, like with like (DESIGN §5): the
// work is queued and its tables analyzed before the clock starts, synchronous_commit is on,
// each side has a pool of 10 connections, and every client runs on this machine's cores.
//   (a) raw: our db modules (lease + submit) called directly, batches of 32 and 64,
//       expired leases swept every 250 ms as the API sweeps them
//   (b) http: the whole API in its own process (JWT, JSON, signed lease ids), volunteers
//       posting results with `next`, 64-chunk leases
//   (c) graphile-worker, batched (localQueue + batched completion), no-op jobs
// Usage: npx node bench/dispatch.bench.ts [chunks]   (DATABASE_URL, default the local server;
// BENCH_NO_ANALYZE=1 leaves the tables without statistics, as this CI's server keeps them)
import { mkdirSync, writeFileSync } from "node:fs";
import { createTask, createUser, createVolunteer, leaseChunks, reclaimExpiredLeases, submitChunks } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { createTestDatabase, dropDatabase, taskFixture, leaseRef, leaseRequest } from "@crowdcompute/db/testing";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { adminUrl, databaseName, drainTask, keepAliveClient, machineTimes, startApiProcess, startRangeTask, treeCpuSeconds, volunteerTokens } from "./api-process.ts";

const chunks = Number(process.argv[2] ?? 100_000);
const clients = 16;
const poolSize = 10;

type Row = { path: string; chunks: number; seconds: number; perSecond: number; cpuUsPerChunk: number; note: string };
const rows: Row[] = [];

/**
 * Starts a timed section: its end records the rate and the CPU time the whole machine spent
 * per chunk (every process: Postgres, the API, the clients), the figure that decides how far
 * a 2-core machine can go.
 */
function timed() {
  const started = performance.now();
  const machine = machineTimes();
  return (path: string, count: number, note: string) => {
    const ms = performance.now() - started;
    const busySeconds = machineTimes().busySeconds - machine.busySeconds;
    const row = { path, chunks: count, seconds: ms / 1000, perSecond: Math.round(count / (ms / 1000)), cpuUsPerChunk: Math.round((busySeconds * 1e6) / count), note };
    rows.push(row);
    console.error(`  ${path}: ${row.perSecond.toLocaleString("en")} chunks/s, ${row.cpuUsPerChunk} µs of CPU a chunk`);
  };
}

/**
 * Statistics as autovacuum would have them on a live server (this CI's has it off): without
 * them graphile-worker's job query degrades as its queue grows (100k jobs: 18.6k/s, 200k:
 * 11.7k/s; with them ~51k/s either way). Every side gets the same, after its work is queued.
 */
async function analyze(url: string) {
  if (process.env.BENCH_NO_ANALYZE) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("ANALYZE");
  } finally {
    await client.end();
  }
}

async function rawPath(batch: number) {
  const url = await createTestDatabase(adminUrl);
  const { db, close } = createPostgresDb(url, { max: poolSize });
  try {
    const owner = await createUser(db, { email: "bench@example.com", passwordHash: "x", firstIsAdmin: false });
    await createTask(db, taskFixture(owner!.id, { name: "bench", maxAttempts: 5, inputs: { kind: "range", start: 0, end: chunks, step: 1, size: 1 } }));
    await analyze(url);
    const volunteers = await Promise.all(Array.from({ length: clients }, () => createVolunteer(db, { name: "v", userId: null })));
    let done = 0;
    // Swept as the API sweeps: at most every 250 ms, not before every lease.
    let lastSweep = 0;
    const finished = timed();
    await Promise.all(volunteers.map(async (v, shard) => {
      for (;;) {
        if (performance.now() - lastSweep > 250) {
          lastSweep = performance.now();
          await reclaimExpiredLeases(db, shard % 16);
        }
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
    finished(`(a) raw db modules, batch ${batch}`, chunks, `${clients} concurrent lessees, pool ${poolSize}`);
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
    await analyze(url);
    const tokens = await volunteerTokens(client, clients);
    const apiCpu = treeCpuSeconds(server.pid);
    const clientCpu = process.cpuUsage();
    const finished = timed();
    const accepted = (await Promise.all(tokens.map((token) => drainTask(client, token)))).reduce((a, b) => a + b, 0);
    if (accepted !== chunks) throw new Error(`http path accepted ${accepted} of ${chunks}`);
    const usPerChunk = (seconds: number) => Math.round((seconds * 1e6) / chunks);
    const { user, system } = process.cpuUsage(clientCpu);
    const split = `of which the API ${usPerChunk(treeCpuSeconds(server.pid) - apiCpu)} µs, the clients ${usPerChunk((user + system) / 1e6)} µs`;
    finished("(b) HTTP API, 64-chunk leases", chunks, `${clients} volunteer clients (node:http keep-alive), server pool ${poolSize}, one Node process (the npm start bundle); CPU ${split}`);
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
    await analyze(url);
    let completed = 0;
    let finish!: () => void;
    const allDone = new Promise<void>((resolve) => (finish = resolve));
    const finished = timed();
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
    finished("(c) graphile-worker, batched", chunks, `concurrency ${clients}, pool ${poolSize}, localQueue 500, completeJobBatchDelay 0`);
    await runner.stop();
    await pgPool.end();
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
console.log("\n| path | chunks | seconds | chunks/s | machine CPU µs/chunk | setup |\n|---|---|---|---|---|---|");
for (const row of rows) console.log(`| ${row.path} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${row.cpuUsPerChunk} | ${row.note} |`);
const ratios = { httpOverGraphile: byPath("(b)") / byPath("(c)"), httpOverRaw64: byPath("(b)") / raw64 };
console.log(`\nHTTP / graphile-worker = ${ratios.httpOverGraphile.toFixed(2)}× (target ≥ 1.5×); HTTP / raw batch 64 = ${(ratios.httpOverRaw64 * 100).toFixed(0)} % (target ≥ 60 %)`);
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/dispatch.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), chunks, clients, poolSize, rows, ratios }, null, 2));
