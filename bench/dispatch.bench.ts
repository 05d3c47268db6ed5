// Dispatch throughput on one Postgres server, one run, like with like: the work is queued
// and its tables analyzed before the clock starts, synchronous_commit is on, each side has a
// pool of 10 connections, and every client runs on this machine's cores.
//   (a) raw: our db modules (lease + submit) called directly, blocks of 64 and blocks sized
//       to a 4 s work buffer; expired leases swept every 250 ms as the API sweeps them
//   (b) http: the whole API in its own process (JWT, JSON, signed lease ids), volunteers
//       posting each block's results with `next`: blocks of 64, blocks sized to the work,
//       and sized blocks of a task with replication 2 / quorum 2 (trusted volunteers)
//   (c) graphile-worker, batched (localQueue + batched completion), no-op jobs
// Each row also says how many rows Postgres wrote (inserted, updated, deleted) per chunk.
// Usage: npx node bench/dispatch.bench.ts [chunks]   (DATABASE_URL, default the local server;
// BENCH_NO_ANALYZE=1 leaves the tables without statistics, as this CI's server keeps them;
// BENCH_ONLY=raw|http|graphile runs one side; replication runs the two sized HTTP paths, plain and replicated)
import { mkdirSync, writeFileSync } from "node:fs";
import { createTask, createUser, createVolunteer, leaseBlocks, reclaimExpiredLeases, submitResults } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { createTestDatabase, dropDatabase, leaseRequest, taskFixture } from "@crowdcompute/db/testing";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { adminUrl, databaseName, drainTask, keepAliveClient, machineTimes, sleep, startApiProcess, startRangeTask, treeCpuSeconds, volunteerTokens } from "./api-process.ts";

const chunks = Number(process.argv[2] ?? 1_000_000);
// A replicated task whose copies agree is voted on by the block (docs/architecture.md,
// "Replication, trust and reduce"), so it runs as many chunks as the plain one: BENCH_REPLICATED_CHUNKS to change.
const replicatedChunks = Number(process.env.BENCH_REPLICATED_CHUNKS ?? chunks);
const allChunks = chunks;
const clients = 16;
const poolSize = 10;

type Row = { path: string; chunks: number; seconds: number; perSecond: number; cpuUsPerChunk: number; rowsPerChunk: number; note: string };
const rows: Row[] = [];

/**
 * Rows Postgres wrote in the database (every user table), from its cumulative statistics. A
 * backend hands its counts in when its connection ends (an idle one only now and then), so
 * callers read this after closing theirs.
 */
async function rowsWritten(url: string): Promise<number> {
  await sleep(200);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const {
      rows: [row],
    } = await client.query<{ n: string }>("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint AS n FROM pg_stat_user_tables");
    return Number(row!.n);
  } finally {
    await client.end();
  }
}

/**
 * Starts a timed section: its end records the rate, the CPU time the whole machine spent per
 * chunk (every process: Postgres, the API, the clients), the figure that decides how far a
 * 2-core machine can go, and the rows written per chunk.
 */
async function timed(url: string) {
  const writtenBefore = await rowsWritten(url);
  const started = performance.now();
  const machine = machineTimes();
  /** `closeConnections` ends every connection that wrote, so that their counts reach the statistics. */
  return async (path: string, count: number, note: string, closeConnections: () => Promise<unknown>) => {
    const ms = performance.now() - started;
    const busySeconds = machineTimes().busySeconds - machine.busySeconds;
    await closeConnections();
    const written = (await rowsWritten(url)) - writtenBefore;
    const row = {
      path,
      chunks: count,
      seconds: ms / 1000,
      perSecond: Math.round(count / (ms / 1000)),
      cpuUsPerChunk: Math.round((busySeconds * 1e6) / count),
      rowsPerChunk: Math.round((written / count) * 1000) / 1000,
      note,
    };
    rows.push(row);
    console.error(`  ${path}: ${row.perSecond.toLocaleString("en")} chunks/s, ${row.cpuUsPerChunk} µs of CPU and ${row.rowsPerChunk} rows written a chunk`);
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

/** Our db modules without HTTP: `max` chunks a request (blocks of at most that), or sized to a 4 s buffer. */
async function rawPath(sizing: { max: number } | { bufferMs: number }) {
  const url = await createTestDatabase(adminUrl);
  const { db, close } = createPostgresDb(url, { max: poolSize });
  try {
    const owner = await createUser(db, { email: "bench@example.com", passwordHash: "x", firstIsAdmin: false });
    const taskId = await createTask(db, taskFixture(owner!.id, { name: "bench", maxAttempts: 5, inputs: { kind: "range", start: 0, end: chunks, step: 1, size: 1 } }));
    await analyze(url);
    const volunteers = await Promise.all(Array.from({ length: clients }, () => createVolunteer(db, { name: "v", userId: null })));
    let done = 0;
    // Swept as the API sweeps: at most every 250 ms, not before every lease.
    let lastSweep = 0;
    const finished = await timed(url);
    await Promise.all(
      volunteers.map(async (v, shard) => {
        for (;;) {
          if (performance.now() - lastSweep > 250) {
            lastSweep = performance.now();
            await reclaimExpiredLeases(db, shard % 16);
          }
          const blocks = await leaseBlocks(db, leaseRequest(v.id, "max" in sizing ? { max: sizing.max, threads: 4 } : { max: 16_384, bufferMs: sizing.bufferMs, threads: 4 }));
          if (blocks.length === 0) return;
          const runs = blocks.map((b) => ({ leaseRowId: b.leaseRowId, taskId, firstIdx: b.firstIdx, offset: 0, count: b.n, resultsJson: `[${new Array<string>(b.n).fill("0").join(",")}]`, cpuMs: 0 }));
          const { inserted } = await submitResults(db, { volunteerId: v.id, shard: shard % 16, runs, errors: [] });
          done += inserted;
        }
      }),
    );
    if (done !== chunks) throw new Error(`raw path finished ${done} of ${chunks}`);
    await finished("max" in sizing ? `(a) raw db modules, blocks of ${sizing.max}` : "(a) raw db modules, blocks sized to the work", chunks, `${clients} concurrent lessees, pool ${poolSize}`, close);
  } finally {
    await close();
    await dropDatabase(adminUrl, databaseName(url));
  }
}

/**
 * Every client here is an anonymous volunteer from 127.0.0.1, one network source: its bound on
 * what a source holds (docs/architecture.md, "Bounds on what one volunteer holds") is raised
 * so that 16 volunteers each holding a 4096-chunk block are not held back. Printed at the start.
 */
const loopbackEnv = { LEASE_HELD_PER_SOURCE: String(clients * 4096 * 4) };

/** The API in its own process, 16 keep-alive volunteer clients draining one range task. */
async function httpPath(label: string, lease: Record<string, unknown>, replication: { copies: number; quorum: number; spotCheck?: number } | null = null) {
  const chunks = replication ? replicatedChunks : allChunks;
  const url = await createTestDatabase(adminUrl);
  const server = await startApiProcess(url, loopbackEnv);
  try {
    const client = keepAliveClient(server.base, clients);
    await startRangeTask(
      client,
      "bench",
      chunks,
      replication ? { replication: replication.copies, quorum: replication.quorum, ...(replication.spotCheck ? { spotCheck: replication.spotCheck } : {}) } : {},
    );
    const tokens = await volunteerTokens(client, clients);
    // A mature pool: every volunteer trusted, so `quorum` agreeing copies decide a chunk.
    if (replication) await trustEveryone(url);
    await analyze(url);
    const apiCpu = treeCpuSeconds(server.pid);
    const clientCpu = process.cpuUsage();
    const finished = await timed(url);
    // Spot-checked, the copies a task takes are not known before: it ends when the task is done.
    const spotChecked = replication?.spotCheck !== undefined;
    const expected = spotChecked ? Number.POSITIVE_INFINITY : chunks * (replication?.copies ?? 1);
    let taskDone = false;
    const watching = spotChecked ? watchTaskDone(url, () => (taskDone = true)) : null;
    // A volunteer's chain of leases ends when a lease comes back empty; a replicated task's next
    // copies appear only as first copies come back, so each volunteer asks again after a short
    // wait, as the page does after `retryAfterMs`, until every copy is in (a volunteer no longer
    // waits for all others to run dry first: those rounds left one volunteer working at the end).
    let accepted = 0;
    const deadline = performance.now() + 600_000;
    await Promise.all(
      tokens.map(async (token) => {
        while (accepted < expected && !taskDone && performance.now() < deadline) {
          const got = await drainTask(client, token, lease);
          accepted += got;
          if (got === 0 && accepted < expected && !taskDone) await sleep(5);
        }
      }),
    );
    await watching;
    if (spotChecked ? !taskDone : accepted !== expected) throw new Error(`http path accepted ${accepted} of ${expected}`);
    const copies = spotChecked ? `; ${(accepted / chunks).toFixed(3)} copies received a chunk` : "";
    const usPerChunk = (seconds: number) => Math.round((seconds * 1e6) / chunks);
    const { user, system } = process.cpuUsage(clientCpu);
    const split = `of which the API ${usPerChunk(treeCpuSeconds(server.pid) - apiCpu)} µs, the clients ${usPerChunk((user + system) / 1e6)} µs`;
    await finished(label, chunks, `${clients} volunteer clients (node:http keep-alive), server pool ${poolSize}, one Node process (the npm start bundle); CPU ${split}${copies}`, () => server.stop());
  } finally {
    await server.stop();
    await dropDatabase(adminUrl, databaseName(url));
  }
}

/** Polls the task's status every 50 ms until it is done, then calls `done`. */
async function watchTaskDone(url: string, done: () => void) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const deadline = performance.now() + 600_000; performance.now() < deadline; await sleep(50)) {
      const { rows } = await client.query<{ status: string }>("SELECT status FROM tasks");
      if (rows.every((row) => row.status === "done")) return done();
    }
  } finally {
    await client.end();
  }
}

async function trustEveryone(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("UPDATE volunteers SET trusted = true");
  } finally {
    await client.end();
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
    const finished = await timed(url);
    // Our own pool, ended before the database is dropped (else its idle clients error out).
    const pgPool = new pg.Pool({ connectionString: url, max: poolSize });
    const runner = await run({
      pgPool,
      concurrency: clients,
      noHandleSignals: true,
      pollInterval: 1000,
      taskList: { noop: async () => {} },
      logger,
      preset: { worker: { localQueue: { size: 2000 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    } as Parameters<typeof run>[0]);
    runner.events.on("job:success", () => {
      if (++completed === chunks) finish();
    });
    await allDone;
    await finished("(c) graphile-worker, batched", chunks, `concurrency ${clients}, pool ${poolSize}, localQueue 2000, completeJobBatchDelay 0`, async () => {
      await runner.stop();
      await pgPool.end();
    });
  } finally {
    await dropDatabase(adminUrl, databaseName(url));
  }
}

const sized = { bufferMs: 4000, capabilities: { threads: 4 } };
const replicatedPath = "(b) HTTP API, sized, replication 2 / quorum 2";
const spotCheckedPath = "(b) HTTP API, sized, replication 2 / quorum 2, spotCheck 0.1";

console.error(`dispatch benchmark: ${chunks.toLocaleString("en")} chunks on ${adminUrl.replace(/\/\/[^@]*@/, "//")}`);
console.error(
  `  the API processes run with ${Object.entries(loopbackEnv)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")} (every client is one loopback source)`,
);
const only = process.env.BENCH_ONLY;
if (!only || only === "raw") {
  await rawPath({ max: 64 });
  await rawPath({ bufferMs: 4000 });
}
if (!only || only === "http" || only === "replication") {
  if (only !== "replication") await httpPath("(b) HTTP API, blocks of 64", { max: 64, capabilities: { threads: 32 } });
  // Plain, replicated and spot-checked take turns BENCH_PAIRS times (default 1; 3 with BENCH_ONLY=replication):
  // on a shared machine one pair can land on a quiet and a busy moment.
  const pairs = Number(process.env.BENCH_PAIRS ?? (only === "replication" ? 3 : 1));
  for (let pair = 0; pair < pairs; pair++) {
    await httpPath("(b) HTTP API, blocks sized to the work", sized);
    await httpPath(replicatedPath, sized, { copies: 2, quorum: 2 });
    await httpPath(spotCheckedPath, sized, { copies: 2, quorum: 2, spotCheck: 0.1 });
  }
}
if (!only || only === "graphile") await graphileWorker();

const byPath = (path: string) => rows.find((row) => row.path === path)?.perSecond ?? Number.NaN;
/** `path` ÷ plain chunks/s of each round run back to back, and their median. */
function medianPairRatio(path: string): number {
  const plain = rows.filter((row) => row.path === "(b) HTTP API, blocks sized to the work");
  const replicated = rows.filter((row) => row.path === path);
  const each = replicated.map((row, i) => row.perSecond / (plain[i]?.perSecond ?? Number.NaN)).filter(Number.isFinite);
  if (each.length > 1) console.log(`\n${path.slice("(b) HTTP API, sized, ".length)} / plain, round by round: ${each.map((r) => `${r.toFixed(3)}×`).join(", ")}`);
  const sorted = [...each].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
}
console.log("\n| path | chunks | seconds | chunks/s | machine CPU µs/chunk | rows written/chunk | setup |\n|---|---|---|---|---|---|---|");
for (const row of rows) console.log(`| ${row.path} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${row.cpuUsPerChunk} | ${row.rowsPerChunk} | ${row.note} |`);
const ratios = {
  httpOverGraphile: byPath("(b) HTTP API, blocks sized to the work") / byPath("(c) graphile-worker, batched"),
  http64OverGraphile: byPath("(b) HTTP API, blocks of 64") / byPath("(c) graphile-worker, batched"),
  httpOverRaw: byPath("(b) HTTP API, blocks sized to the work") / byPath("(a) raw db modules, blocks sized to the work"),
  replicatedOverPlain: medianPairRatio(replicatedPath),
  spotCheckedOverPlain: medianPairRatio(spotCheckedPath),
};
const replicatedRows = rows.find((row) => row.path === replicatedPath)?.rowsPerChunk ?? Number.NaN;
console.log(
  `\nHTTP (sized blocks) / graphile-worker = ${ratios.httpOverGraphile.toFixed(2)}× (target ≥ 1.5×); with blocks of 64: ${ratios.http64OverGraphile.toFixed(2)}×; ` +
    `HTTP / raw, sized = ${(ratios.httpOverRaw * 100).toFixed(0)} %`,
);
console.log(
  `Replication 2 / quorum 2 / plain, both sized through HTTP in this run (median of the pairs) = ${ratios.replicatedOverPlain.toFixed(3)}× (target ≥ 0.4×, ceiling 0.5×: every chunk is computed twice); ` +
    `${replicatedRows} rows written a replicated chunk (target ≤ 0.05)`,
);
console.log(`Replication 2 / quorum 2 at spotCheck 0.1, every volunteer trusted / plain (median) = ${ratios.spotCheckedOverPlain.toFixed(3)}× (target ≥ 0.8×; its copies a chunk are in its row)`);
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/dispatch.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), chunks, clients, poolSize, rows, ratios }, null, 2));
