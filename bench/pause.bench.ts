// Pause (docs/architecture.md, "The volunteer page"): the sandbox alone in Chromium runs chunks
// that spin 8 s checking nothing, on 1 and on 8 threads; then it is stopped either the old way
// (`cancel` the running chunks: 500 ms for them to let go, then `terminate()` their workers) or
// the new way (`stop`: the frame goes, its workers with it). Prints the browser's CPU (all its
// processes, as Chromium counts them) in each half second from the stop to 2.5 s after, and the
// issue's measure: the CPU from 0.5 s to 2.5 s after, in cores (target under 0.1).
// Usage: npx node bench/pause.bench.ts [rounds]
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type CDPSession, chromium } from "playwright-core";
import { buildBootstrap } from "../packages/sandbox/build.ts";
import { startServers } from "../packages/sandbox/test/servers.ts";
import { sleep } from "./api-process.ts";

const rounds = Number(process.argv[2] ?? 2);
const code = "export default (x) => { const end = performance.now() + 8000; while (performance.now() < end); return x; };";
const sha = createHash("sha256").update(code).digest("hex");
const task = { taskId: sha, code, codeSha256: sha, timeoutMs: 60_000 };

async function cpuSeconds(cdp: CDPSession): Promise<number> {
  const { processInfo } = (await cdp.send("SystemInfo.getProcessInfo")) as { processInfo: { cpuTime: number }[] };
  return processInfo.reduce((sum, info) => sum + info.cpuTime, 0);
}

await buildBootstrap();
const servers = await startServers();
const browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
const cdp = await browser.newBrowserCDPSession();
type Row = { way: "cancel" | "stop"; threads: number; halves: number[]; cores: number };
const rows: Row[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    for (const threads of [1, 8]) {
      for (const way of ["cancel", "stop"] as const) {
        const page = await browser.newPage();
        await page.goto(`${servers.appOrigin}/`);
        await page.evaluate(
          async ([origin, threads, task]) => {
            const host = (window as unknown as { ccSandbox: { createSandbox(o: object): Promise<{ runBatch(t: object, c: object[]): Promise<unknown> }> } }).ccSandbox;
            const sandbox = await host.createSandbox({ origin, threads });
            (window as unknown as { benchSandbox: unknown }).benchSandbox = sandbox;
            void sandbox.runBatch(
              task,
              Array.from({ length: threads }, (_, k) => ({ key: `${k}`, index: k, input: k })),
            );
          },
          [servers.sandboxOrigin, threads, task] as const,
        );
        await sleep(1500);
        await page.evaluate(
          ([way, threads]) => {
            const sandbox = (window as unknown as { benchSandbox: { cancel(keys: string[]): Promise<void>; stop(): void } }).benchSandbox;
            if (way === "stop") sandbox.stop();
            else void sandbox.cancel(Array.from({ length: threads }, (_, k) => `${k}`));
          },
          [way, threads] as const,
        );
        const stoppedAt = performance.now();
        const marks = [await cpuSeconds(cdp)];
        for (let half = 1; half <= 5; half++) {
          await sleep(stoppedAt + half * 500 - performance.now());
          marks.push(await cpuSeconds(cdp));
        }
        const halves = marks.slice(1).map((mark, k) => mark - marks[k]!);
        rows.push({ way, threads, halves, cores: (marks[5]! - marks[1]!) / 2 });
        await page.close();
        await sleep(500);
      }
    }
  }
} finally {
  await browser.close();
  await servers.close();
}

console.log("\nBrowser CPU after stopping chunks that spin 8 s and check nothing (sandbox alone, headless Chromium)\n");
console.log("| way | threads | CPU s in each 0.5 s from the stop | cores from 0.5 s to 2.5 s |");
console.log("|---|---|---|---|");
for (const row of rows) {
  const way = row.way === "stop" ? "stop: the frame goes (now)" : "cancel, then terminate() (before)";
  console.log(`| ${way} | ${row.threads} | ${row.halves.map((x) => x.toFixed(2)).join(" ")} | ${row.cores.toFixed(2)} |`);
}
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/pause.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
