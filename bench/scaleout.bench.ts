// Dispatch throughput as API processes are added on one Postgres server (issue 9,
// scale-out): N Node API processes (`apps/api/src/main.ts`, each on its own port, pool 10
// each), then the Workers entry under `wrangler dev` (workerd, offline; one database
// connection per request). The clients are those of dispatch.bench.ts (b): volunteers with
// no compute time that post each block's results with `next`, blocks of 64 (sized blocks
// leave the API and Postgres almost nothing to do: see dispatch.bench.ts), spread
// round-robin over the processes. Every setup gets a fresh database and an untimed warm-up
// task of a tenth of the size first, so each process's JIT is warm when the clock starts.
// Everything (clients, API processes, Postgres) shares this machine's cores: once they are
// busy, more processes cannot add throughput, and the machine-busy column shows it.
// Usage: npx node bench/scaleout.bench.ts [chunks] [process counts, e.g. 1,2,4]
//   BENCH_CLIENTS (default 16) volunteer clients in all; BENCH_WORKERS=0 skips wrangler dev.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, dropDatabase, freePort } from "@crowdcompute/db/testing";
import pg from "pg";
import { bundleWorker, startWranglerDev } from "../apps/api/src/node/wrangler-dev.ts";
import {
  adminUrl,
  benchMintLimits,
  databaseName,
  drainTask,
  type JsonClient,
  jwtSecret,
  keepAliveClient,
  machineTimes,
  startApiProcess,
  startRangeTask,
  treeCpuSeconds,
  volunteerTokens,
} from "./api-process.ts";

const chunks = Number(process.argv[2] ?? 40_000);
const processCounts = (process.argv[3] ?? "1,2,4").split(",").map(Number);
const clients = Number(process.env.BENCH_CLIENTS ?? 16);
const withWorkers = process.env.BENCH_WORKERS !== "0";
// Enough sign-ups for every client from one address (all requests come from 127.0.0.1), and
// room for all of them to hold a 4096-chunk block at once from it (docs/architecture.md,
// "Bounds on what one volunteer holds").
const limits = { ...benchMintLimits, REGISTER_LIMIT_PER_IP: "1000", LEASE_HELD_PER_SOURCE: String(clients * 4096 * 4) };
console.error(
  `API processes run with ${Object.entries(limits)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`,
);

interface Row {
  setup: string;
  processes: number;
  clients: number;
  chunks: number;
  seconds: number;
  perSecond: number;
  apiCpuSeconds: number;
  /** CPU of the database's server processes; null where connections come and go per request. */
  postgresCpuSeconds: number | null;
  clientCpuSeconds: number;
  machineBusyPercent: number;
}
const rows: Row[] = [];
const blocksOf64 = { max: 64, capabilities: { threads: 32 } };

/** CPU seconds so far of each Postgres server process connected to `database` now. */
async function postgresBackendCpu(monitor: pg.Client, database: string): Promise<Map<number, number>> {
  const { rows: backends } = await monitor.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [database]);
  return new Map(backends.map(({ pid }) => [pid, treeCpuSeconds(pid)]));
}

/**
 * Runs a warm-up task, then the measured one, with `clients` volunteers spread round-robin
 * over `bases`; `pids` are the server processes whose CPU time is counted.
 */
async function measure(setup: string, bases: string[], pids: number[], database: string, pooled: boolean): Promise<void> {
  const apiClients: JsonClient[] = bases.map((base) => keepAliveClient(base, clients));
  const first = apiClients[0]!;
  const tokens = await volunteerTokens(first, clients);
  const drainAll = async () => {
    const accepted = await Promise.all(tokens.map((token, i) => drainTask(apiClients[i % apiClients.length]!, token, blocksOf64)));
    return accepted.reduce((a, b) => a + b, 0);
  };
  const warmUp = Math.ceil(chunks / 10);
  await startRangeTask(first, "warmup", warmUp);
  if ((await drainAll()) !== warmUp) throw new Error(`${setup}: the warm-up task did not finish`);

  await startRangeTask(first, "scaleout", chunks);
  // The pools' connections are open after the warm-up and stay open (postgres.js has no idle timeout by default).
  const monitor = new pg.Client({ connectionString: adminUrl });
  await monitor.connect();
  const postgresBefore = await postgresBackendCpu(monitor, database);
  const apiCpuBefore = pids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0);
  const clientCpuBefore = process.cpuUsage();
  const machineBefore = machineTimes();
  const started = performance.now();
  const accepted = await drainAll();
  const seconds = (performance.now() - started) / 1000;
  const machineAfter = machineTimes();
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const apiCpuSeconds = pids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0) - apiCpuBefore;
  const postgresAfter = await postgresBackendCpu(monitor, database);
  await monitor.end();
  const postgresCpuSeconds = [...postgresAfter].reduce((sum, [pid, cpu]) => sum + cpu - (postgresBefore.get(pid) ?? 0), 0);
  if (accepted !== chunks) throw new Error(`${setup}: ${accepted} of ${chunks} chunks accepted`);

  const perSecond = Math.round(chunks / seconds);
  rows.push({
    setup,
    processes: bases.length,
    clients,
    chunks,
    seconds,
    perSecond,
    apiCpuSeconds,
    postgresCpuSeconds: pooled ? postgresCpuSeconds : null,
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
    machineBusyPercent: (100 * (machineAfter.busy - machineBefore.busy)) / Math.max(1, machineAfter.total - machineBefore.total),
  });
  console.error(`  ${setup} × ${bases.length}: ${perSecond.toLocaleString("en")} chunks/s`);
}

async function nodeProcesses(count: number) {
  const url = await createTestDatabase(adminUrl);
  // Started together: their migrations take turns under an advisory lock.
  const started = await Promise.allSettled(Array.from({ length: count }, () => startApiProcess(url, limits)));
  const servers = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  try {
    const failure = started.find((result) => result.status === "rejected");
    if (failure) throw failure.reason;
    await measure(
      "Node",
      servers.map((s) => s.base),
      servers.map((s) => s.pid),
      databaseName(url),
      true,
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await dropDatabase(adminUrl, databaseName(url));
  }
}

async function workersEntry() {
  const url = await createTestDatabase(adminUrl); // created from the migrated template; Workers never migrate
  const scratch = mkdtempSync(join(tmpdir(), "cc-scaleout-"));
  try {
    const dev = await startWranglerDev({
      script: await bundleWorker(join(scratch, "bundle")),
      port: await freePort(),
      persistTo: join(scratch, "state"),
      vars: { DATABASE_URL: url, JWT_SECRET: jwtSecret, ...limits },
    });
    try {
      await measure("Workers (wrangler dev)", [dev.url], [dev.child.pid!], databaseName(url), false);
    } catch (error) {
      console.error(`wrangler dev output:\n${dev.output()}`);
      throw error;
    } finally {
      await dev.stop();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await dropDatabase(adminUrl, databaseName(url));
  }
}

console.error(`scale-out benchmark: ${chunks.toLocaleString("en")} chunks, ${clients} clients, ${cpus().length} cores, on ${adminUrl.replace(/\/\/[^@]*@/, "//")}`);
for (const count of processCounts) await nodeProcesses(count);
if (withWorkers) await workersEntry();

const baseline = rows.find((row) => row.setup === "Node" && row.processes === 1)?.perSecond;
const withSpeedUp = rows.map((row) => ({ ...row, speedUp: baseline ? row.perSecond / baseline : null }));
console.log(
  "\n| setup | processes | clients | chunks | seconds | chunks/s | speed-up vs 1 process | API CPU s | Postgres CPU s | client CPU s | machine busy |\n|---|---|---|---|---|---|---|---|---|---|---|",
);
for (const row of withSpeedUp) {
  const speedUp = row.speedUp === null ? "—" : `${row.speedUp.toFixed(2)}×`;
  console.log(
    `| ${row.setup} | ${row.processes} | ${row.clients} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${speedUp} | ${row.apiCpuSeconds.toFixed(1)} | ${row.postgresCpuSeconds?.toFixed(1) ?? "—"} | ${row.clientCpuSeconds.toFixed(1)} | ${row.machineBusyPercent.toFixed(0)} % |`,
  );
}
console.log(
  `\n${cpus().length} cores shared by the clients, every API process and Postgres (and whatever else runs here): "machine busy" is the share of all cores busy during the run, for any process.`,
);
console.log("API CPU counts each API process (for Workers: wrangler and workerd); Postgres CPU, the server processes of the pools' connections (Workers open one per request: not counted).");
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/scaleout.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, chunks, clients, rows: withSpeedUp }, null, 2));
