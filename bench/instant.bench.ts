// Submit → first result with volunteers already waiting (docs/architecture.md, "Dispatch",
// waiting volunteers): a creator creates a one-chunk task with `start: true` and reads its
// `?follow=true` stream until the first line, 50 times, while lean HTTP volunteers wait with
// `waitMs`; beside it, the old path (volunteers that poll every retryAfterMs) and
// one real volunteer page in headless Chromium, and graphile-worker's add-to-start latency
// (LISTEN/NOTIFY), in the same run.
// BENCH_INSTANT_TASKS (50), BENCH_INSTANT_VOLUNTEERS (8).
import http from "node:http";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { chromium } from "playwright-core";
import { adminUrl, benchMintLimits, databaseName, liveServer, percentile, sleep } from "./api-process.ts";

const tasks = Number(process.env.BENCH_INSTANT_TASKS ?? 50);
const volunteers = Number(process.env.BENCH_INSTANT_VOLUNTEERS ?? 8);
const waitingEnv = { ...benchMintLimits, LEASE_WAITING_PER_SOURCE: "10000" };

/** Reads `path` until its first line; resolves when it arrives. */
function firstLine(base: string, path: string, token: string): Promise<void> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.get({ host: hostname, port, path, headers: { authorization: `Bearer ${token}` } }, (response) => {
      response.on("data", (part: Buffer) => {
        if (part.includes(10)) {
          resolve();
          request.destroy();
        }
      });
      response.on("error", () => {});
    });
    request.on("error", (error) => (error.message.includes("socket hang up") ? undefined : reject(error)));
  });
}

/** When a volunteer got each task's chunk (ms, this process's clock): the first hop of the latency. */
const leasedAt = new Map<string, number>();
const leaseLatencies: number[] = [];

async function httpPath(waitMs: number | null, n: number): Promise<number[]> {
  leaseLatencies.length = 0;
  const live = await liveServer(waitingEnv, volunteers * 2 + 4);
  const { server: api, client, token: creator } = live;
  let running = true;
  try {
    const loops = Array.from({ length: volunteers }, async () => {
      const { token } = await client.post("/api/volunteers", { name: "lean" });
      while (running) {
        const answer = await client.post("/api/work/lease", { max: 1, capabilities: { threads: 1 }, ...(waitMs === null ? {} : { waitMs }) }, token).catch(() => ({ leases: [], retryAfterMs: 100 }));
        for (const lease of answer.leases) {
          leasedAt.set(lease.taskId, performance.now());
          await client.post("/api/work/results", { results: [{ leaseId: lease.leaseId, offset: 0, results: lease.inputs, errors: [], cpuMs: 0 }] }, token);
        }
        if (answer.leases.length === 0 && answer.retryAfterMs > 0) await sleep(answer.retryAfterMs);
      }
    });
    await sleep(500); // every volunteer minted and waiting (or polling)
    const latencies: number[] = [];
    // Three tasks first, not counted: the API's first statements plan and its code warms up.
    for (let i = -3; i < n; i++) {
      const startedAt = performance.now();
      const { task } = await client.post("/api/tasks", { name: `instant ${i}`, code: "export default (x) => x", inputs: [i], start: true }, creator);
      await firstLine(api.base, `/api/tasks/${task.id}/results?follow=true`, creator);
      if (i >= 0) {
        latencies.push(performance.now() - startedAt);
        leaseLatencies.push((leasedAt.get(task.id) ?? Number.NaN) - startedAt);
      }
      await sleep(20 + Math.random() * 30);
    }
    running = false;
    // The waiting ones are answered by the shutdown.
    await api.stop();
    await Promise.race([Promise.all(loops), sleep(3000)]);
    return latencies;
  } finally {
    running = false;
    await live.close();
  }
}

/** The same with one real volunteer page in headless Chromium (Start clicked, it waits), `n` tasks. */
async function browserPath(n: number): Promise<number[]> {
  const live = await liveServer(waitingEnv, 4);
  const { server: api, client, token: creator } = live;
  const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
  try {
    const page = await browser.newPage();
    await page.goto(`${api.base}/`);
    await page.getByRole("button", { name: "Start" }).click();
    while ((await page.getByTestId("state").textContent()) !== "Waiting for work") await sleep(100);
    const latencies: number[] = [];
    for (let i = -3; i < n; i++) {
      const startedAt = performance.now();
      const { task } = await client.post("/api/tasks", { name: `page ${i}`, code: "export default (x) => x", inputs: [i], start: true }, creator);
      await firstLine(api.base, `/api/tasks/${task.id}/results?follow=true`, creator);
      if (i >= 0) latencies.push(performance.now() - startedAt);
      // The page posts, then asks again (and waits) before the next task.
      await sleep(300);
    }
    return latencies;
  } finally {
    await browser.close();
    await live.close();
  }
}

async function graphileAddToStart(n: number): Promise<number[]> {
  const url = await createTestDatabase(adminUrl);
  const logger = new Logger(() => () => {});
  const pgPool = new pg.Pool({ connectionString: url, max: 4 });
  pgPool.on("error", () => {});
  try {
    const utils = await makeWorkerUtils({ connectionString: url, logger });
    await utils.migrate();
    let started: (() => void) | null = null;
    const runner = await run({ pgPool, concurrency: 1, noHandleSignals: true, pollInterval: 2000, logger, taskList: { noop: async () => started?.() } });
    const latencies: number[] = [];
    for (let i = 0; i < n; i++) {
      const startedAt = performance.now();
      const begun = new Promise<void>((resolve) => (started = resolve));
      await utils.addJob("noop", {});
      await begun;
      latencies.push(performance.now() - startedAt);
      await sleep(20 + Math.random() * 30);
    }
    await runner.stop();
    await utils.release();
    return latencies;
  } finally {
    await pgPool.end();
    await dropDatabase(adminUrl, databaseName(url)).catch(() => {});
  }
}

const row = (name: string, xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return `| ${name} | ${xs.length} | ${percentile(sorted, 50).toFixed(1)} | ${percentile(sorted, 90).toFixed(1)} | ${percentile(sorted, 99).toFixed(1)} | ${sorted[sorted.length - 1]!.toFixed(1)} |`;
};

console.log(`minting limits raised for loopback: ${JSON.stringify(benchMintLimits)}; LEASE_WAITING_PER_SOURCE=${waitingEnv.LEASE_WAITING_PER_SOURCE}; ${volunteers} lean volunteers`);
const waiting = await httpPath(20_000, tasks);
const waitingLeased = [...leaseLatencies];
const polling = await httpPath(null, Math.min(tasks, 20));
const paged = await browserPath(Math.min(tasks, 20));
const graphile = await graphileAddToStart(tasks);
console.log("\n| path | tasks | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|");
console.log(row("waiting volunteers (waitMs): create → first followed result", waiting));
console.log(row("waiting volunteers (waitMs): create → chunk leased", waitingLeased));
console.log(row("polling volunteers (retryAfterMs 2 s, old path): create → first followed result", polling));
console.log(row("one browser volunteer page (waitMs): create → first followed result", paged));
console.log(row("graphile-worker: addJob → task starts (LISTEN/NOTIFY)", graphile));
console.log("\ntargets: waiting p50 < 50 ms, p99 < 200 ms; browser page p50 < 300 ms");
process.exit(0);
