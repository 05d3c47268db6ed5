// Sandbox overhead (docs/architecture.md, "The sandbox"), one run on this machine:
//   kernels: primes by trial division and a pure-JS SHA-256, the same source in plain Node,
//            in a plain Worker in Chromium and in our sandbox in Chromium (timed inside each);
//   dispatch: tiny chunks through the whole sandbox path (host → frame → worker and back),
//            sequential (one chunk per call, awaited) and pipelined (64-chunk batches, all in flight).
// Usage: npx node bench/sandbox.bench.ts
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { chromium } from "playwright-core";
import { buildBootstrap } from "../packages/sandbox/build.ts";
import { startServers } from "../packages/sandbox/test/servers.ts";
import { kernelSource } from "./sandbox-kernels.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const kernels = [
  { name: "primes < 3M (trial division)", input: { kernel: "primes", limit: 3_000_000 } },
  { name: "sha256 2 MiB × 24 (pure JS)", input: { kernel: "sha256", bytes: 2 * 1024 * 1024, rounds: 24 } },
];
const sequentialChunks = 400;
const pipelinedChunks = 6400;
const batchSize = 64;
const threads = 2;

type KernelResult = { value: unknown; ms: number };
const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

async function inNode(input: object): Promise<KernelResult> {
  const module = (await import(`data:text/javascript,${encodeURIComponent(kernelSource)}`)) as { default: (input: object) => KernelResult };
  return module.default(input);
}

await buildBootstrap();
const servers = await startServers();
const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
const rows: { kernel: string; nodeMs: number; workerMs: number; sandboxMs: number; sandboxWallMs: number; vsNode: number }[] = [];
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

  const task = { taskId: "bench-kernels", code: kernelSource, codeSha256: sha256(kernelSource), timeoutMs: 600_000 };
  for (const { name, input } of kernels) {
    console.error(`kernel: ${name}`);
    const node = await inNode(input);
    console.error(`  node: ${node.ms.toFixed(0)} ms`);
    const worker = await page.evaluate(
      async ([source, input]) => {
        // A plain module Worker on the app origin: no CSP, no lockdown, no Comlink.
        // onmessage is set before any await: a message that arrives first would be lost.
        const wrapper = `const loading = import(${JSON.stringify("URL")}); onmessage = async (e) => postMessage((await loading).default(e.data));`;
        const codeUrl = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
        const url = URL.createObjectURL(new Blob([wrapper.replace('"URL"', JSON.stringify(codeUrl))], { type: "text/javascript" }));
        const worker = new Worker(url, { type: "module" });
        const result = await new Promise<KernelResult>((resolve, reject) => {
          worker.onmessage = (event) => resolve(event.data as KernelResult);
          worker.onerror = (event) => reject(new Error(`the plain worker failed: ${event.message}`));
          worker.postMessage(input);
        });
        worker.terminate();
        return result;
      },
      [kernelSource, input] as const,
    );
    console.error(`  plain worker: ${worker.ms.toFixed(0)} ms`);
    const sandbox = await page.evaluate(
      async ([task, input]) => {
        const started = performance.now();
        const sandbox = (window as unknown as { sandbox: { runBatch(t: object, c: object[]): Promise<{ ok: boolean; resultJson: string }[]> } }).sandbox;
        const [outcome] = await sandbox.runBatch(task, [{ key: "k", index: 0, input }]);
        const wallMs = performance.now() - started;
        if (!outcome?.ok) throw new Error(`the kernel failed in the sandbox: ${JSON.stringify(outcome)}`);
        return { ...(JSON.parse(outcome.resultJson) as KernelResult), wallMs };
      },
      [task, input] as const,
    );
    if (JSON.stringify(worker.value) !== JSON.stringify(node.value) || JSON.stringify(sandbox.value) !== JSON.stringify(node.value)) {
      throw new Error(`${name}: results differ: node ${node.value}, worker ${worker.value}, sandbox ${sandbox.value}`);
    }
    rows.push({ kernel: name, nodeMs: node.ms, workerMs: worker.ms, sandboxMs: sandbox.ms, sandboxWallMs: sandbox.wallMs, vsNode: node.ms / sandbox.ms });
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
console.log("\nSandbox overhead (one run; kernel ms timed inside each environment; Chromium %s)", findChromium());
console.log("| kernel | Node ms | plain Worker ms | sandbox ms | sandbox wall ms | sandbox speed vs Node |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const row of rows) {
  console.log(`| ${row.kernel} | ${fixed(row.nodeMs)} | ${fixed(row.workerMs)} | ${fixed(row.sandboxMs)} | ${fixed(row.sandboxWallMs)} | ${fixed(row.vsNode, 2)}× |`);
}
console.log(`\nTiny chunks through host → frame → worker (${threads} threads):`);
console.log("| mode | chunks | ms per chunk |");
console.log("|---|---:|---:|");
console.log(`| sequential (1 chunk per call, awaited) | ${sequentialChunks} | ${fixed(dispatch!.sequentialMsPerChunk, 3)} |`);
console.log(`| pipelined (${batchSize}-chunk batches, all in flight) | ${pipelinedChunks} | ${fixed(dispatch!.pipelinedMsPerChunk, 3)} |`);
console.log("\nTargets: sandbox speed ≥ 0.95× Node on each kernel; pipelined < 0.3 ms per chunk.");

mkdirSync(`${root}bench/results`, { recursive: true });
writeFileSync(`${root}bench/results/sandbox.json`, `${JSON.stringify({ date: new Date().toISOString(), chromium: findChromium(), threads, kernels: rows, dispatch }, null, 2)}\n`);
