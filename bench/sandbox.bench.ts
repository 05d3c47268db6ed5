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
// Usage: npx node bench/sandbox.bench.ts [rounds]
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bundleWork } from "@crowdcompute/sdk/node";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { chromium, type Page } from "playwright-core";
import { buildBootstrap } from "../packages/sandbox/build.ts";
import { startServers } from "../packages/sandbox/test/servers.ts";
import { kernelSource } from "./sandbox-kernels.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Number(process.argv[2] ?? 3);
const realSource = (await bundleWork(fileURLToPath(new URL("./sandbox-real-kernels.ts", import.meta.url)))).code;
const kernels = [
  { name: "primes < 3M (trial division)", source: kernelSource, input: { kernel: "primes", limit: 3_000_000 } },
  { name: "sha256 2 MiB × 24 (pure JS)", source: kernelSource, input: { kernel: "sha256", bytes: 2 * 1024 * 1024, rounds: 24 } },
  { name: "hash-search example, 100k nonces (@noble/hashes)", source: realSource, input: { kernel: "hash-search", n: 100_000 } },
  { name: "typed arrays + DataViews + subarray/slice × 500k", source: realSource, input: { kernel: "typed-arrays", n: 500_000 } },
  { name: "TextEncoder.encode × 500k", source: realSource, input: { kernel: "text-encoder", n: 500_000 } },
  { name: "JSON stringify + parse × 200k", source: realSource, input: { kernel: "json", n: 200_000 } },
  { name: "acorn parses a 60-function module × 100", source: realSource, input: { kernel: "acorn", n: 100 } },
];
const sequentialChunks = 400;
const pipelinedChunks = 6400;
const batchSize = 64;
const threads = 2;

type KernelResult = { value: unknown; ms: number };
const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
const nodeModules = new Map<string, Promise<{ default: (input: object) => KernelResult | Promise<KernelResult> }>>();

async function inNode(source: string, input: object): Promise<KernelResult> {
  if (!nodeModules.has(source)) nodeModules.set(source, import(`data:text/javascript,${encodeURIComponent(source)}`));
  return (await nodeModules.get(source)!).default(input);
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
const servers = await startServers();
const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
type Row = { kernel: string; nodeMs: number[]; workerMs: number[]; sandboxMs: number[]; sandboxWallMs: number[] };
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
    const row: Row = { kernel: name, nodeMs: [], workerMs: [], sandboxMs: [], sandboxWallMs: [] };
    for (let round = 0; round < rounds; round++) {
      // Alternating, the order turned round each time: a drift on the shared machine hits all three.
      const order = round % 2 === 0 ? (["node", "worker", "sandbox"] as const) : (["sandbox", "worker", "node"] as const);
      const values: Record<string, unknown> = {};
      for (const where of order) {
        if (where === "node") {
          const node = await inNode(source, input);
          row.nodeMs.push(node.ms);
          values.node = node.value;
        } else if (where === "worker") {
          const worker = await inPlainWorker(page, source, input);
          row.workerMs.push(worker.ms);
          values.worker = worker.value;
        } else {
          const sandbox = await inSandbox(page, source, input);
          row.sandboxMs.push(sandbox.ms);
          row.sandboxWallMs.push(sandbox.wallMs);
          values.sandbox = sandbox.value;
        }
      }
      if (JSON.stringify(values.worker) !== JSON.stringify(values.node) || JSON.stringify(values.sandbox) !== JSON.stringify(values.node)) {
        throw new Error(`${name}: results differ: ${JSON.stringify(values)}`);
      }
      console.error(`  round ${round + 1}: node ${row.nodeMs.at(-1)!.toFixed(0)} ms, plain worker ${row.workerMs.at(-1)!.toFixed(0)} ms, sandbox ${row.sandboxMs.at(-1)!.toFixed(0)} ms`);
    }
    rows.push(row);
  }

  console.error("dispatch: tiny chunks");
  dispatch = await page.evaluate(
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
console.log(`\nSandbox overhead (${rounds} rounds, alternating; kernel ms timed inside each environment, median and range; Chromium %s)`, findChromium());
console.log("| kernel | Node ms | plain Worker ms | sandbox ms | sandbox wall ms | sandbox speed vs plain Worker | vs Node |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const row of rows) {
  const speed = median(row.workerMs) / median(row.sandboxMs);
  console.log(
    `| ${row.kernel} | ${fixed(median(row.nodeMs))} (${range(row.nodeMs)}) | ${fixed(median(row.workerMs))} (${range(row.workerMs)}) | ${fixed(median(row.sandboxMs))} (${range(row.sandboxMs)}) | ${fixed(median(row.sandboxWallMs))} | ${fixed(speed, 2)}× | ${fixed(median(row.nodeMs) / median(row.sandboxMs), 2)}× |`,
  );
}
console.log(`\nTiny chunks through host → frame → worker (${threads} threads):`);
console.log("| mode | chunks | ms per chunk |");
console.log("|---|---:|---:|");
console.log(`| sequential (1 chunk per call, awaited) | ${sequentialChunks} | ${fixed(dispatch!.sequentialMsPerChunk, 3)} |`);
console.log(`| pipelined (${batchSize}-chunk batches, all in flight) | ${pipelinedChunks} | ${fixed(dispatch!.pipelinedMsPerChunk, 3)} |`);
console.log("\nTargets: sandbox speed ≥ 0.9× a plain Chromium worker on every kernel; pipelined < 0.3 ms per chunk.");

mkdirSync(`${root}bench/results`, { recursive: true });
writeFileSync(`${root}bench/results/sandbox.json`, `${JSON.stringify({ date: new Date().toISOString(), chromium: findChromium(), threads, rounds, kernels: rows, dispatch }, null, 2)}\n`);
