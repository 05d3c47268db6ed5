// Sandbox overhead (docs/architecture.md, "The sandbox"), one run on this machine:
//   kernels: the same work code in plain Node, in a plain module Worker in Chromium and in our
//            sandbox in Chromium, timed inside each, each kernel `rounds` times, alternating
//            (the workers stay warm across rounds). Two CPU kernels that allocate almost nothing
//            (trial division, a SHA-256 over one buffer: bench/sandbox-kernels.ts), and kernels
//            that allocate as real code does (bench/sandbox-real-kernels.ts, bundled as the CLI
//            bundles work code): the hash-search example (sha256 from @noble/hashes), typed
//            arrays and DataViews, TextEncoder, JSON, acorn parsing a module;
//   dispatch: tiny chunks through the whole sandbox path (host → frame → worker and back),
//            sequential (one chunk per call, awaited) and pipelined (64-chunk batches, all in flight).
// Usage: npx node bench/sandbox.bench.ts [rounds] [kernels]: kernels, comma-separated, picks those
// whose input names them (primes, sha256, hash-search, typed-arrays, text-encoder, json, acorn),
// and the dispatch part only if "dispatch" is among them (`1 dispatch`: the dispatch part alone).
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bundleWork } from "@crowdcompute/sdk/node";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { chromium, type Page } from "playwright-core";
import { buildBootstrap } from "../packages/sandbox/build.ts";
import { kernelSource } from "./sandbox-kernels.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Number(process.argv[2] ?? 3);
const realSource = (await bundleWork(fileURLToPath(new URL("./sandbox-real-kernels.ts", import.meta.url)))).code;
const allKernels = [
  { name: "primes < 3M (trial division)", source: kernelSource, input: { kernel: "primes", limit: 3_000_000 } },
  { name: "sha256 2 MiB × 24 (pure JS)", source: kernelSource, input: { kernel: "sha256", bytes: 2 * 1024 * 1024, rounds: 24 } },
  { name: "hash-search example, 100k nonces (@noble/hashes)", source: realSource, input: { kernel: "hash-search", n: 100_000 } },
  { name: "typed arrays + DataViews + subarray/slice × 500k", source: realSource, input: { kernel: "typed-arrays", n: 500_000 } },
  { name: "TextEncoder.encode × 500k", source: realSource, input: { kernel: "text-encoder", n: 500_000 } },
  { name: "JSON stringify + parse × 200k", source: realSource, input: { kernel: "json", n: 200_000 } },
  { name: "acorn parses a 60-function module × 100", source: realSource, input: { kernel: "acorn", n: 100 } },
];
const picked = process.argv[3]?.split(",");
const kernels = picked ? allKernels.filter(({ input }) => picked.includes(input.kernel)) : allKernels;
const sequentialChunks = 400;
const pipelinedChunks = 6400;
const batchSize = 64;
const threads = 2;

type KernelResult = { value: unknown; ms: number };
/** The bench's own Chromium, found by this switch in its command line (Chromium ignores switches it does not know). */
const marker = `--crowdcompute-bench=${process.pid}`;

/** pid → parent pid of every process, from /proc. */
function parents(): Map<number, number> {
  const found = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      found.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * CPU time (user + system, ticks of 10 ms) of each worker thread of the bench's Chromium, by
 * thread: a kernel's own CPU, whatever else the shared machine runs (wall times there moved
 * ±50 % between rounds).
 */
function chromiumWorkerTicks(): Map<string, number> {
  const ticks = new Map<string, number>();
  const all = parents();
  const root = [...all.keys()].find((pid) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      return cmdline.includes(marker) && !cmdline.includes("--type=");
    } catch {
      return false;
    }
  });
  if (root === undefined) return ticks;
  const family = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, parent] of all) if (family.has(parent) && !family.has(pid)) grew = Boolean(family.add(pid));
  }
  for (const pid of family) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        if (!readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").startsWith("DedicatedWorker")) continue;
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks.set(`${pid}/${tid}`, Number(fields[11]) + Number(fields[12]));
      }
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}

/** CPU ms the worker threads spent between two readings (a thread that ended meanwhile is not counted). */
function cpuMsBetween(before: Map<string, number>, after: Map<string, number>): number {
  let ticks = 0;
  for (const [thread, now] of after) ticks += now - (before.get(thread) ?? 0);
  return ticks * 10; // USER_HZ is 100 on Linux
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
const nodeModules = new Map<string, Promise<{ default: (input: object) => KernelResult | Promise<KernelResult> }>>();

async function inNode(source: string, input: object): Promise<KernelResult & { cpuMs: number }> {
  if (!nodeModules.has(source)) nodeModules.set(source, import(`data:text/javascript,${encodeURIComponent(source)}`));
  const module = await nodeModules.get(source)!;
  const before = process.cpuUsage();
  const result = await module.default(input);
  const used = process.cpuUsage(before);
  return { ...result, cpuMs: (used.user + used.system) / 1000 };
}

/**
 * The worker threads' ticks once none of them ran for `quietMs` (at most `limitMs`). A worker
 * keeps its thread busy for a while after it posted its result (V8 collects the kernel's garbage
 * then: 20–50 ms of CPU); read at once, that went to whichever kernel ran next (the sandbox's
 * reading of the TextEncoder kernel held 30–50 ms of the plain worker's thread, and the other way round).
 */
async function settledWorkerTicks(quietMs = 150, limitMs = 3000): Promise<Map<string, number>> {
  const started = Date.now();
  let last = chromiumWorkerTicks();
  let quietSince = Date.now();
  while (Date.now() - quietSince < quietMs && Date.now() - started < limitMs) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = chromiumWorkerTicks();
    if (cpuMsBetween(last, now) > 0) quietSince = Date.now();
    last = now;
  }
  return last;
}

/** Runs `run` and adds the CPU time the bench's Chromium workers spent for it, what they did after it returned included. */
async function withWorkerCpu<T>(run: () => Promise<T>): Promise<T & { cpuMs: number }> {
  const before = await settledWorkerTicks();
  const result = await run();
  return { ...result, cpuMs: cpuMsBetween(before, await settledWorkerTicks()) };
}

/** A plain module Worker per source on the app origin (no CSP, no lockdown), kept warm across rounds like the sandbox's. */
async function inPlainWorker(page: Page, source: string, input: object): Promise<KernelResult> {
  return page.evaluate(
    async ([source, input]) => {
      const registry = ((window as unknown as { plainWorkers?: Map<string, Worker> }).plainWorkers ??= new Map<string, Worker>());
      let worker = registry.get(source);
      if (!worker) {
        // onmessage is set before any await: a message that arrives first would be lost.
        const wrapper = `const loading = import(${JSON.stringify("URL")}); onmessage = async (e) => postMessage(await (await loading).default(e.data));`;
        const codeUrl = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
        worker = new Worker(URL.createObjectURL(new Blob([wrapper.replace('"URL"', JSON.stringify(codeUrl))], { type: "text/javascript" })), { type: "module" });
        registry.set(source, worker);
      }
      const running = worker;
      return new Promise<KernelResult>((resolve, reject) => {
        running.onmessage = (event: MessageEvent) => resolve(event.data as KernelResult);
        running.onerror = (event: ErrorEvent) => reject(new Error(`the plain worker failed: ${event.message}`));
        running.postMessage(input);
      });
    },
    [source, input] as const,
  );
}

async function inSandbox(page: Page, source: string, input: object): Promise<KernelResult & { wallMs: number }> {
  const task = { taskId: `bench-${sha256(source).slice(0, 16)}`, code: source, codeSha256: sha256(source), timeoutMs: 600_000 };
  return page.evaluate(
    async ([task, input]) => {
      const started = performance.now();
      const sandbox = (window as unknown as { sandbox: { runBatch(t: object, c: object[]): Promise<{ ok: boolean; resultJson: string }[]> } }).sandbox;
      const [outcome] = await sandbox.runBatch(task, [{ key: `k${Math.random()}`, index: 0, input }]);
      const wallMs = performance.now() - started;
      if (!outcome?.ok) throw new Error(`the kernel failed in the sandbox: ${JSON.stringify(outcome)}`);
      return { ...(JSON.parse(outcome.resultJson) as KernelResult), wallMs };
    },
    [task, input] as const,
  );
}

await buildBootstrap();
// Imported only now: the servers serve the bootstrap that dist/bootstrap.js held when they were
// imported, and a static import ran before the build above (each run measured the tree of the run before).
const { startServers } = await import("../packages/sandbox/test/servers.ts");
const servers = await startServers();
// BENCH_CHROMIUM_ARGS adds switches, e.g. `--js-flags=--prof` for V8 tick logs (isolate-*.log in the working directory).
const extraArgs = process.env.BENCH_CHROMIUM_ARGS?.split(" ").filter(Boolean) ?? [];
const browser = await chromium.launch({ executablePath: findChromium(), args: [...chromiumArgs, marker, ...extraArgs] });
type Row = { kernel: string; nodeMs: number[]; workerMs: number[]; sandboxMs: number[]; sandboxWallMs: number[]; nodeCpuMs: number[]; workerCpuMs: number[]; sandboxCpuMs: number[] };
const rows: Row[] = [];
let dispatch: { sequentialMsPerChunk: number; pipelinedMsPerChunk: number } | undefined;
try {
  const page = await browser.newPage();
  await page.goto(`${servers.appOrigin}/`);
  await page.evaluate(
    async ([origin, threads]) => {
      (window as unknown as { sandbox: unknown }).sandbox = await (window as unknown as { ccSandbox: { createSandbox(o: object): Promise<unknown> } }).ccSandbox.createSandbox({ origin, threads });
    },
    [servers.sandboxOrigin, threads] as const,
  );

  for (const { name, source, input } of kernels) {
    console.error(`kernel: ${name}`);
    const row: Row = { kernel: name, nodeMs: [], workerMs: [], sandboxMs: [], sandboxWallMs: [], nodeCpuMs: [], workerCpuMs: [], sandboxCpuMs: [] };
    for (let round = 0; round < rounds; round++) {
      // Alternating, the order turned round each time: a drift on the shared machine hits all three.
      const order = round % 2 === 0 ? (["node", "worker", "sandbox"] as const) : (["sandbox", "worker", "node"] as const);
      const values: Record<string, unknown> = {};
      for (const where of order) {
        if (where === "node") {
          const node = await inNode(source, input);
          row.nodeMs.push(node.ms);
          row.nodeCpuMs.push(node.cpuMs);
          values.node = node.value;
        } else if (where === "worker") {
          const worker = await withWorkerCpu(() => inPlainWorker(page, source, input));
          row.workerMs.push(worker.ms);
          row.workerCpuMs.push(worker.cpuMs);
          values.worker = worker.value;
        } else {
          const sandbox = await withWorkerCpu(() => inSandbox(page, source, input));
          row.sandboxMs.push(sandbox.ms);
          row.sandboxCpuMs.push(sandbox.cpuMs);
          row.sandboxWallMs.push(sandbox.wallMs);
          values.sandbox = sandbox.value;
        }
      }
      if (JSON.stringify(values.worker) !== JSON.stringify(values.node) || JSON.stringify(values.sandbox) !== JSON.stringify(values.node)) {
        throw new Error(`${name}: results differ: ${JSON.stringify(values)}`);
      }
      console.error(
        `  round ${round + 1}: node ${row.nodeMs.at(-1)!.toFixed(0)} ms (CPU ${row.nodeCpuMs.at(-1)!.toFixed(0)}), plain worker ${row.workerMs.at(-1)!.toFixed(0)} ms (CPU ${row.workerCpuMs.at(-1)!.toFixed(0)}), sandbox ${row.sandboxMs.at(-1)!.toFixed(0)} ms (CPU ${row.sandboxCpuMs.at(-1)!.toFixed(0)})`,
      );
    }
    rows.push(row);
  }

  // A run of picked kernels skips the dispatch part, unless "dispatch" is one of them.
  const runDispatch = !picked || picked.includes("dispatch");
  if (runDispatch) console.error("dispatch: tiny chunks");
  dispatch = !runDispatch
    ? undefined
    : await page.evaluate(
        async ([sequentialChunks, pipelinedChunks, batchSize]) => {
          const code = "export default (n) => n + 1;";
          const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(code)));
          const codeSha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
          const task = { taskId: "bench-tiny", code, codeSha256, timeoutMs: 10_000 };
          type Outcome = { ok: boolean; resultJson: string };
          const sandbox = (window as unknown as { sandbox: { runBatch(t: object, c: object[]): Promise<Outcome[]> } }).sandbox;
          const check = (outcomes: Outcome[], first: number) =>
            outcomes.forEach((outcome, i) => {
              if (!outcome.ok || outcome.resultJson !== String(first + i + 1)) throw new Error(`wrong outcome ${JSON.stringify(outcome)}`);
            });
          await sandbox.runBatch(task, [{ key: "warm", index: 0, input: 0 }]); // workers loaded

          let started = performance.now();
          for (let i = 0; i < sequentialChunks; i++) check(await sandbox.runBatch(task, [{ key: `s${i}`, index: i, input: i }]), i);
          const sequentialMsPerChunk = (performance.now() - started) / sequentialChunks;

          started = performance.now();
          const batches: Promise<void>[] = [];
          for (let first = 0; first < pipelinedChunks; first += batchSize) {
            const chunks = Array.from({ length: batchSize }, (_, i) => ({ key: `p${first + i}`, index: first + i, input: first + i }));
            batches.push(sandbox.runBatch(task, chunks).then((outcomes) => check(outcomes, first)));
          }
          await Promise.all(batches);
          const pipelinedMsPerChunk = (performance.now() - started) / pipelinedChunks;
          return { sequentialMsPerChunk, pipelinedMsPerChunk };
        },
        [sequentialChunks, pipelinedChunks, batchSize] as const,
      );
} finally {
  await browser.close();
  await servers.close();
}

const fixed = (n: number, digits = 0) => n.toFixed(digits);
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const range = (values: number[]): string => `${fixed(Math.min(...values))}–${fixed(Math.max(...values))}`;
console.log(
  `\nSandbox overhead (${rounds} rounds, alternating; Chromium %s). CPU ms: the kernel's thread time (Node's process, Chromium's worker threads, from /proc), min of the rounds; wall ms timed inside each environment, median and range.`,
  findChromium(),
);
console.log("| kernel | Node CPU ms | plain Worker CPU ms | sandbox CPU ms | sandbox speed vs plain Worker (CPU) | Node wall ms | plain Worker wall ms | sandbox wall ms | vs plain Worker (wall) |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const row of rows) {
  const cpu = (values: number[]) => Math.min(...values);
  console.log(
    `| ${row.kernel} | ${fixed(cpu(row.nodeCpuMs))} | ${fixed(cpu(row.workerCpuMs))} | ${fixed(cpu(row.sandboxCpuMs))} | ${fixed(cpu(row.workerCpuMs) / cpu(row.sandboxCpuMs), 2)}× | ${fixed(median(row.nodeMs))} (${range(row.nodeMs)}) | ${fixed(median(row.workerMs))} (${range(row.workerMs)}) | ${fixed(median(row.sandboxMs))} (${range(row.sandboxMs)}) | ${fixed(median(row.workerMs) / median(row.sandboxMs), 2)}× |`,
  );
}
if (dispatch) {
  console.log(`\nTiny chunks through host → frame → worker (${threads} threads):`);
  console.log("| mode | chunks | ms per chunk |");
  console.log("|---|---:|---:|");
  console.log(`| sequential (1 chunk per call, awaited) | ${sequentialChunks} | ${fixed(dispatch.sequentialMsPerChunk, 3)} |`);
  console.log(`| pipelined (${batchSize}-chunk batches, all in flight) | ${pipelinedChunks} | ${fixed(dispatch.pipelinedMsPerChunk, 3)} |`);
}
console.log("\nTargets: sandbox speed ≥ 0.9× a plain Chromium worker on every kernel; pipelined < 0.3 ms per chunk.");

mkdirSync(`${root}bench/results`, { recursive: true });
writeFileSync(`${root}bench/results/sandbox.json`, `${JSON.stringify({ date: new Date().toISOString(), chromium: findChromium(), threads, rounds, kernels: rows, dispatch }, null, 2)}\n`);
