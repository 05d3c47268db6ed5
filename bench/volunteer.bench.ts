// What one real browser volunteer gets done, end to end: `crowdcompute volunteer` (headless
// Chromium on the real volunteer page, through the sandbox) against the API in its own
// process on real Postgres, beside the sandbox alone in the same Chromium as the peer.
//   tiny:  chunks of `x => x + 1` on 2 threads: chunks/s from the first lease to the last result
//   20 ms: chunks that each spin 20 ms on 1 thread: utilisation = chunks/s × 20 ms
// Usage: npx node bench/volunteer.bench.ts [tiny chunks] [20 ms chunks]   (DATABASE_URL)
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import pg from "pg";
import { chromium } from "playwright-core";
import { buildBootstrap } from "../packages/sandbox/build.ts";
import { startServers } from "../packages/sandbox/test/servers.ts";
import { adminUrl, databaseName, type JsonClient, keepAliveClient, sleep, startApiProcess } from "./api-process.ts";

const tinyChunks = Number(process.argv[2] ?? 50_000);
const spinChunks = Number(process.argv[3] ?? 500);
const spinMs = 20;
const tinyCode = "export default (x) => x + 1;";
const spinCode = `export default (x) => { const end = performance.now() + ${spinMs}; while (performance.now() < end); return x; };`;
const cli = fileURLToPath(new URL("../apps/cli/bin/crowdcompute.js", import.meta.url));

type Row = { run: string; chunks: number; seconds: number; perSecond: number; utilisation: number | null; rowsPerChunk: number | null; note: string };
const rows: Row[] = [];

/** The peer: the same chunks through the sandbox alone (host page → frame → workers), no server, in blocks of 4096 added ahead. */
async function sandboxAlone(code: string, count: number, threads: number): Promise<{ seconds: number }> {
  await buildBootstrap();
  const servers = await startServers();
  const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
  try {
    const page = await browser.newPage();
    await page.goto(`${servers.appOrigin}/`);
    const task = { taskId: createHash("sha256").update(code).digest("hex"), code, codeSha256: createHash("sha256").update(code).digest("hex"), timeoutMs: 60_000 };
    const ms = await page.evaluate(
      async ([origin, threads, task, count]) => {
        const host = (window as unknown as { ccSandbox: { createSandbox(o: object): Promise<{ runBatch(t: object, c: object[]): Promise<{ ok: boolean }[]> }> } }).ccSandbox;
        const sandbox = await host.createSandbox({ origin, threads });
        await sandbox.runBatch(task, [{ key: "warm", index: 0, input: 0 }]);
        const started = performance.now();
        const batches: Promise<{ ok: boolean }[]>[] = [];
        for (let first = 0; first < count; first += 4096) {
          batches.push(
            sandbox.runBatch(
              task,
              Array.from({ length: Math.min(4096, count - first) }, (_, k) => ({ key: `${first + k}`, index: first + k, input: first + k })),
            ),
          );
        }
        const outcomes = (await Promise.all(batches)).flat();
        if (!outcomes.every((outcome) => outcome.ok)) throw new Error("a chunk failed in the sandbox");
        return performance.now() - started;
      },
      [servers.sandboxOrigin, threads, task, count] as const,
    );
    return { seconds: ms / 1000 };
  } finally {
    await browser.close();
    await servers.close();
  }
}

/** Starts `crowdcompute volunteer` against `base`; resolves once it runs. */
function startVolunteer(base: string, threads: number): ChildProcess {
  const child = spawn(process.execPath, [cli, "volunteer", "--server", base, "--threads", String(threads), "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  child.stderr!.on("data", () => {});
  child.stdout!.on("data", () => {});
  return child;
}

async function stopVolunteer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** From the task's first lease to its last result, as Postgres dated them, and the rows it wrote. */
async function taskSpan(url: string, taskId: string): Promise<{ seconds: number; resultRows: number; leaseRows: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const {
      rows: [row],
    } = await client.query<{ s: number; results: string; leases: string }>(
      `SELECT extract(epoch FROM (SELECT max(created_at) FROM results WHERE task_id = $1) - (SELECT min(created_at) FROM leases WHERE task_id = $1))::float8 AS s,
              (SELECT count(*) FROM results WHERE task_id = $1) AS results, (SELECT count(*) FROM leases WHERE task_id = $1) AS leases`,
      [taskId],
    );
    return { seconds: row!.s, resultRows: Number(row!.results), leaseRows: Number(row!.leases) };
  } finally {
    await client.end();
  }
}

async function endToEnd(client: JsonClient, token: string, url: string, base: string, run: string, code: string, count: number, threads: number) {
  const inputs = Array.from({ length: count }, (_, i) => i);
  const { task } = await client.post("/api/tasks", { name: run, code, inputs, start: true, timeoutMs: 60_000 }, token);
  const volunteer = startVolunteer(base, threads);
  try {
    for (;;) {
      if (volunteer.exitCode !== null) throw new Error(`crowdcompute volunteer exited with ${volunteer.exitCode}`);
      const view = (await client.get(`/api/tasks/${task.id}`, token)).task;
      if (view.status === "done") {
        if (view.counts.done !== count) throw new Error(`${run}: ${view.counts.done} of ${count} done`);
        break;
      }
      await sleep(250);
    }
  } finally {
    await stopVolunteer(volunteer);
  }
  const span = await taskSpan(url, task.id);
  return { ...span, perSecond: count / span.seconds };
}

console.error(`volunteer benchmark: ${tinyChunks.toLocaleString("en")} tiny chunks on 2 threads, ${spinChunks} chunks of ${spinMs} ms on 1 thread`);
const tinyAlone = await sandboxAlone(tinyCode, tinyChunks, 2);
rows.push({
  run: "sandbox alone, tiny chunks, 2 threads",
  chunks: tinyChunks,
  seconds: tinyAlone.seconds,
  perSecond: Math.round(tinyChunks / tinyAlone.seconds),
  utilisation: null,
  rowsPerChunk: null,
  note: "the peer: the same chunks through host → frame → workers, no server",
});
console.error(`  sandbox alone: ${rows.at(-1)!.perSecond.toLocaleString("en")} chunks/s`);

const url = await createTestDatabase(adminUrl);
const server = await startApiProcess(url);
try {
  const client = keepAliveClient(server.base, 4);
  const { token } = await client.post("/api/auth/register", { email: "bench@example.com", password: "bench password" });
  const tiny = await endToEnd(client, token, url, server.base, "tiny", tinyCode, tinyChunks, 2);
  rows.push({
    run: "crowdcompute volunteer --threads 2, tiny chunks",
    chunks: tinyChunks,
    seconds: tiny.seconds,
    perSecond: Math.round(tiny.perSecond),
    utilisation: null,
    rowsPerChunk: Math.round(((tiny.resultRows + tiny.leaseRows) / tinyChunks) * 1000) / 1000,
    note: `first lease to last result; ${tiny.leaseRows} lease rows, ${tiny.resultRows} result rows`,
  });
  console.error(`  volunteer, tiny: ${rows.at(-1)!.perSecond.toLocaleString("en")} chunks/s`);
  const spin = await endToEnd(client, token, url, server.base, "spin", spinCode, spinChunks, 1);
  rows.push({
    run: `crowdcompute volunteer --threads 1, ${spinMs} ms chunks`,
    chunks: spinChunks,
    seconds: spin.seconds,
    perSecond: Math.round(spin.perSecond * 10) / 10,
    utilisation: Math.round(spin.perSecond * (spinMs / 1000) * 1000) / 1000,
    rowsPerChunk: Math.round(((spin.resultRows + spin.leaseRows) / spinChunks) * 1000) / 1000,
    note: `first lease to last result (the first blocks are 2 chunks until the task's mean is known); peer: 1 thread fully busy = ${1000 / spinMs} chunks/s`,
  });
  console.error(`  volunteer, ${spinMs} ms: utilisation ${rows.at(-1)!.utilisation}`);
} finally {
  await server.stop();
  await dropDatabase(adminUrl, databaseName(url));
}

console.log("\n| run | chunks | seconds | chunks/s | utilisation | lease + result rows/chunk | note |\n|---|---|---|---|---|---|---|");
for (const row of rows) {
  console.log(`| ${row.run} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${row.utilisation ?? "–"} | ${row.rowsPerChunk ?? "–"} | ${row.note} |`);
}
console.log("\ntargets: tiny chunks ≥ 5,000 chunks/s; 20 ms chunks on 1 thread: utilisation ≥ 0.95");
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/volunteer.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
