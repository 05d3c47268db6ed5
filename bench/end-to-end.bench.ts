// What reaches the creator (docs/architecture.md, "The sandbox"): the hash-search example
// (examples/hash-search, sha256 from @noble/hashes, bundled as the CLI bundles it) over
// 2,000,000 nonces in 40 chunks, in one run, alternating, each `rounds` times:
//   platform: the API on real Postgres and one `crowdcompute volunteer --threads 2` already
//             waiting when the task starts: from the start request to the task's finished_at;
//   plain Chromium pool: a page with 2 plain module workers on the same bundle and inputs (the
//             browser's own limit), from creating the workers to the last result;
//   Node pool: 2 worker_threads on the same bundle (what the creator's own machine does).
// "steady" is the rate from the first result to the last, without the start.
// Usage: npx node bench/end-to-end.bench.ts [rounds] [nonces] [chunks]   (DATABASE_URL)
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker as ThreadWorker } from "node:worker_threads";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import { bundleWork } from "@crowdcompute/sdk/node";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import pg from "pg";
import { chromium } from "playwright-core";
import { startServers } from "../packages/sandbox/test/servers.ts";
import { adminUrl, databaseName, keepAliveClient, sleep, startApiProcess } from "./api-process.ts";

const rounds = Number(process.argv[2] ?? 2);
const nonces = Number(process.argv[3] ?? 2_000_000);
const chunkCount = Number(process.argv[4] ?? 40);
const size = Math.ceil(nonces / chunkCount);
const threads = 2;
const cli = fileURLToPath(new URL("../apps/cli/bin/crowdcompute.js", import.meta.url));
const { code } = await bundleWork(fileURLToPath(new URL("../examples/hash-search/work.js", import.meta.url)));
const inputs = Array.from({ length: chunkCount }, (_, i) => ({ start: i * size, end: Math.min(nonces, (i + 1) * size), step: 1 }));

/** Seconds from the start to the last result, and from the first result to the last (the steady part). */
type Run = { seconds: number; steadySeconds: number; steadyChunks: number; hits: number; firstResultSeconds?: number; rows?: string };
const runs: Record<string, Run[]> = { platform: [], "plain Chromium pool": [], "Node pool": [] };

/** Each chunk's hits, summed: all three must find the same. */
const countHits = (results: { hits: unknown[] }[]): number => results.reduce((sum, result) => sum + result.hits.length, 0);

async function nodePool(): Promise<Run> {
  const source = `const { parentPort } = require("node:worker_threads");
    const loading = import("data:text/javascript," + encodeURIComponent(${JSON.stringify(code)}));
    parentPort.on("message", async (input) => parentPort.postMessage(await (await loading).default(input, { progress() {} })));`;
  const started = performance.now();
  const workers = Array.from({ length: threads }, () => new ThreadWorker(source, { eval: true }));
  const results: { hits: unknown[] }[] = [];
  const finishedAt: number[] = [];
  let next = 0;
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          const take = () => {
            if (next >= inputs.length) return resolve();
            worker.postMessage(inputs[next++]);
          };
          worker.on("message", (result: { hits: unknown[] }) => {
            results.push(result);
            finishedAt.push(performance.now());
            take();
          });
          worker.on("error", reject);
          take();
        }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((worker) => worker.terminate()));
  return { seconds, steadySeconds: (finishedAt.at(-1)! - finishedAt[0]!) / 1000, steadyChunks: finishedAt.length - 1, hits: countHits(results) };
}

async function chromiumPool(page: import("playwright-core").Page): Promise<Run> {
  return page.evaluate(
    async ([code, inputs, threads]) => {
      const started = performance.now();
      const codeUrl = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      const wrapper = `const loading = import(${JSON.stringify(codeUrl)}); onmessage = async (e) => postMessage(await (await loading).default(e.data, { progress() {} }));`;
      const url = URL.createObjectURL(new Blob([wrapper], { type: "text/javascript" }));
      const results: { hits: unknown[] }[] = [];
      const finishedAt: number[] = [];
      let next = 0;
      const workers = Array.from({ length: threads }, () => new Worker(url, { type: "module" }));
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise<void>((resolve, reject) => {
              const take = () => (next >= inputs.length ? resolve() : worker.postMessage(inputs[next++]));
              worker.onmessage = (event: MessageEvent) => {
                results.push(event.data as { hits: unknown[] });
                finishedAt.push(performance.now());
                take();
              };
              worker.onerror = (event: ErrorEvent) => reject(new Error(event.message));
              take();
            }),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      for (const worker of workers) worker.terminate();
      return {
        seconds,
        steadySeconds: (finishedAt.at(-1)! - finishedAt[0]!) / 1000,
        steadyChunks: finishedAt.length - 1,
        hits: results.reduce((sum, result) => sum + result.hits.length, 0),
      };
    },
    [code, inputs, threads] as const,
  );
}

/** Starts `crowdcompute volunteer`; resolves once its page says it is waiting for work. */
async function startVolunteer(base: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, "volunteer", "--server", base, "--threads", String(threads), "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  child.stderr!.on("data", () => {});
  let buffered = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the volunteer did not reach `waiting` in 60 s")), 60_000);
    child.once("exit", (status) => reject(new Error(`crowdcompute volunteer exited with ${status}`)));
    child.stdout!.on("data", (data: Buffer) => {
      buffered += data.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        if (/"states":\["waiting"\]/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
  return child;
}

async function platform(client: ReturnType<typeof keepAliveClient>, token: string, url: string, round: number): Promise<Run> {
  const { task } = await client.post("/api/tasks", { name: `hash search ${round}`, code, range: { start: 0, end: nonces, step: 1, size }, start: false, timeoutMs: 60_000 }, token);
  const started = Date.now();
  await client.post(`/api/tasks/${task.id}/start`, {}, token);
  for (;;) {
    const view = (await client.get(`/api/tasks/${task.id}`, token)).task;
    if (view.status === "done") {
      if (view.counts.done !== chunkCount) throw new Error(`platform: ${view.counts.done} of ${chunkCount} done`);
      break;
    }
    if (view.status === "failed" || view.counts.failed > 0) throw new Error(`platform: the task failed: ${JSON.stringify(view.counts)}`);
    await sleep(100);
  }
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ at: number; n: number }>("SELECT extract(epoch FROM created_at)::float8 * 1000 AS at, n FROM results WHERE task_id = $1 ORDER BY created_at", [task.id]);
    const {
      rows: [finished],
    } = await db.query<{ at: number }>("SELECT extract(epoch FROM finished_at)::float8 * 1000 AS at FROM tasks WHERE id = $1", [task.id]);
    const last = rows.at(-1)!.at;
    const { rows: resultRows } = await db.query<{ n: number; result: string }>("SELECT n, result FROM results WHERE task_id = $1", [task.id]);
    const decided = resultRows.flatMap((row) => (row.n > 1 ? (JSON.parse(row.result) as { hits: unknown[] }[]) : [JSON.parse(row.result) as { hits: unknown[] }]));
    return {
      seconds: (Math.max(last, finished?.at ?? last) - started) / 1000,
      steadySeconds: (last - rows[0]!.at) / 1000,
      steadyChunks: chunkCount - rows[0]!.n,
      hits: countHits(decided),
      // The start and the shape of the run: when the first result landed, and each result row's chunks at its time.
      firstResultSeconds: (rows[0]!.at - started) / 1000,
      rows: rows.map((row) => `${row.n}@${((row.at - started) / 1000).toFixed(1)}`).join(" "),
    };
  } finally {
    await db.end();
  }
}

console.error(`end-to-end: hash search over ${nonces.toLocaleString("en")} nonces in ${chunkCount} chunks, ${threads} threads, ${rounds} rounds`);
const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
const url = await createTestDatabase(adminUrl);
const server = await startApiProcess(url);
// The plain pool's page: an origin with no CSP (the app's own page allows no blob workers).
const plainPage = await startServers();
let volunteer: ChildProcess | undefined;
try {
  const page = await browser.newPage();
  await page.goto(`${plainPage.appOrigin}/`);
  const client = keepAliveClient(server.base, 4);
  const { token } = await client.post("/api/auth/register", { email: "bench@example.com", password: "bench password" });
  volunteer = await startVolunteer(server.base);
  for (let round = 0; round < rounds; round++) {
    // Turned round each time: a drift on the shared machine hits all three.
    const order = round % 2 === 0 ? ["platform", "plain Chromium pool", "Node pool"] : ["Node pool", "plain Chromium pool", "platform"];
    for (const name of order) {
      const run = name === "platform" ? await platform(client, token, url, round) : name === "Node pool" ? await nodePool() : await chromiumPool(page);
      runs[name]!.push(run);
      console.error(
        `  round ${round + 1}, ${name}: ${run.seconds.toFixed(2)} s (steady ${((run.steadyChunks * size) / run.steadySeconds / 1000).toFixed(0)}k nonces/s), ${run.hits} hits${run.rows ? `; first result at ${run.firstResultSeconds!.toFixed(2)} s, result rows (chunks@s): ${run.rows}` : ""}`,
      );
      // Let the volunteer settle back to waiting (its last report posted) before the next run.
      await sleep(1500);
    }
  }
} finally {
  if (volunteer && volunteer.exitCode === null) {
    const exited = new Promise((resolve) => volunteer!.once("exit", resolve));
    volunteer.kill("SIGTERM");
    await exited;
  }
  await browser.close();
  await plainPage.close();
  await server.stop();
  await dropDatabase(adminUrl, databaseName(url));
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const range = (values: number[], digits = 2): string => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
const steady = (run: Run): number => (run.steadyChunks * size) / run.steadySeconds;
const pool = runs["plain Chromium pool"]!;
console.log(`\nEnd to end: hash search, ${nonces.toLocaleString("en")} nonces in ${chunkCount} chunks, ${threads} threads (${rounds} rounds, alternating; Chromium ${findChromium()})`);
console.log("| run | seconds (median, range) | vs plain Chromium pool | steady k nonces/s | steady vs pool |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, list] of Object.entries(runs)) {
  const seconds = list.map((run) => run.seconds);
  const rates = list.map(steady);
  console.log(
    `| ${name} | ${median(seconds).toFixed(2)} (${range(seconds)}) | ${(median(pool.map((run) => run.seconds)) / median(seconds)).toFixed(2)}× | ${(median(rates) / 1000).toFixed(0)} (${range(
      rates.map((rate) => rate / 1000),
      0,
    )}) | ${(median(rates) / median(pool.map(steady))).toFixed(2)}× |`,
  );
}
console.log("\nTargets: platform ≥ 0.8× the plain Chromium pool end to end, ≥ 0.9× at its steady rate.");
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/end-to-end.json", import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), nonces, chunkCount, threads, rounds, runs }, null, 2)}\n`);
