// Many volunteers at once against one API process on real Postgres: each of N simulated
// volunteers leases 4 chunks, "computes" them for a think time, posts the results with the
// next lease, and polls with retryAfterMs when there is no work. Prints lease and submit
// latency percentiles, the error rate and the server's memory over the run.
// Usage: npx node bench/polling.bench.ts [volunteers] [seconds]
import { spawn } from "node:child_process";
import http from "node:http";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createTestDatabase, dropDatabase, freePort } from "@crowdcompute/db/testing";

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const volunteers = Number(process.argv[2] ?? 2000);
const seconds = Number(process.argv[3] ?? 60);
const thinkMs = 2000;
const root = fileURLToPath(new URL("..", import.meta.url));

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

const url = await createTestDatabase(adminUrl);
const port = await freePort();
// BENCH_SERVER_PROFILE=dir writes a V8 CPU profile of the API process there.
const profile = process.env.BENCH_SERVER_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_SERVER_PROFILE}`] : [];
const server = spawn(process.execPath, [...profile, "apps/api/src/main.ts"], {
  cwd: root,
  env: { ...process.env, DATABASE_URL: url, PORT: String(port), SANDBOX_PORT: String(await freePort()), JWT_SECRET: "bench-secret-bench-secret-bench-secret", IDLE_RETRY_MS: "2000", VOLUNTEER_LIMIT_PER_IP: "1000000" },
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  let serverOutput = 0;
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on("data", (data: Buffer) => {
      serverOutput += data.length;
      if (data.toString().includes("running at")) resolve();
    });
    server.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  // node:http with a keep-alive agent: fetch costs several times the CPU per request, and the
  // client shares the server's two cores.
  const agent = new http.Agent({ keepAlive: true, maxSockets: volunteers });
  const post = (path: string, body: unknown, token?: string) =>
    new Promise<any>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const request = http.request(
        { host: "127.0.0.1", port, path, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...(token ? { authorization: `Bearer ${token}` } : {}) } },
        (response) => {
          const parts: Buffer[] = [];
          response.on("data", (part: Buffer) => parts.push(part));
          response.on("end", () => {
            const json = JSON.parse(Buffer.concat(parts).toString()) as any;
            if ((response.statusCode ?? 500) >= 400) reject(Object.assign(new Error(`${path}: ${response.statusCode}`), { json }));
            else resolve(json);
          });
        },
      );
      request.on("error", reject);
      request.end(payload);
    });
  const { token } = await post("/api/auth/register", { email: "bench@example.com", password: "bench password" });
  // Enough work that nobody runs dry: 4 chunks per volunteer per think time, for the whole run.
  const chunks = Math.ceil((volunteers * 4 * seconds * 1000) / thinkMs);
  await post("/api/tasks", { name: "polling", code: "export default () => 0", range: { start: 0, end: chunks, size: 1 }, start: true }, token);
  // Identities are made beforehand, 50 at a time (the per-address sign-up limit is raised for the bench).
  const tokens: string[] = [];
  for (let i = 0; i < volunteers; i += 50) tokens.push(...(await Promise.all(Array.from({ length: Math.min(50, volunteers - i) }, async () => (await post("/api/volunteers", {})).token as string))));

  const latency = { lease: [] as number[], results: [] as number[] };
  let errors = 0;
  let requests = 0;
  let chunksDone = 0;
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssMb(server.pid!)), 1000);
  const stopAt = Date.now() + seconds * 1000;
  const next = { max: 4, capabilities: { threads: 2 } };
  await Promise.all(tokens.map(async (vt, i) => {
    await sleep((i / volunteers) * thinkMs); // arrivals spread over one think time
    let leases: { leaseId: string }[] = [];
    while (Date.now() < stopAt) {
      const started = performance.now();
      const kind = leases.length > 0 ? "results" : "lease";
      try {
        requests++;
        const out = kind === "results"
          ? await post("/api/work/results", { results: leases.map((l) => ({ leaseId: l.leaseId, result: 0, cpuMs: 1 })), next }, vt)
          : await post("/api/work/lease", next, vt);
        latency[kind].push(performance.now() - started);
        if (kind === "results") chunksDone += out.accepted;
        leases = out.leases;
        await sleep(leases.length > 0 ? thinkMs : out.retryAfterMs);
      } catch {
        errors++;
        await sleep(1000);
      }
    }
  }));
  clearInterval(sampler);

  const rows = (["lease", "results"] as const).map((kind) => {
    const sorted = latency[kind].sort((a, b) => a - b);
    return { kind, count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
  });
  console.log(`\n${volunteers} volunteers for ${seconds} s (think time ${thinkMs} ms): ${requests} requests, ${errors} errors, ${chunksDone} chunks done\n`);
  console.log("| call | count | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|");
  for (const row of rows) console.log(`| ${row.kind} | ${row.count} | ${row.p50.toFixed(1)} | ${row.p99.toFixed(1)} | ${row.max.toFixed(1)} |`);
  const firstRss = rss.slice(0, 5);
  const lastRss = rss.slice(-5);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  console.log(`\nserver RSS: ${avg(firstRss).toFixed(0)} MB in the first 5 s, ${avg(lastRss).toFixed(0)} MB in the last 5 s, max ${Math.max(...rss).toFixed(0)} MB`);
  console.log("targets: p99 lease latency < 50 ms, 0 errors, RSS stable");
  console.log(`server stdout: ${serverOutput} bytes`);
  mkdirSync(new URL("./results", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/polling.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), volunteers, seconds, thinkMs, requests, errors, chunksDone, rows, rssMb: rss }, null, 2));
} finally {
  server.kill("SIGTERM");
  await new Promise((resolve) => server.once("exit", resolve));
  await dropDatabase(adminUrl, new URL(url).pathname.slice(1));
}
