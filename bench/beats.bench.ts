// What the heartbeat period costs the API (docs/architecture.md, "Dispatch"): lean volunteers
// each hold one block and beat it, as the page does, every 10 s (the old period for the default
// timeout) and then every 3 s (the page's now), each run for the same time on the same API
// process and Postgres database. Prints beats a second, the beat's p50/p99 latency and the API
// process's CPU a second and a beat.
// Usage: npx node bench/beats.bench.ts [volunteers] [seconds a run]   (DATABASE_URL)
import { mkdirSync, writeFileSync } from "node:fs";
import { liveServer, percentile, sleep, startRangeTask, treeCpuSeconds, volunteerTokens } from "./api-process.ts";

const volunteers = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 30);
type Row = { periodMs: number; beats: number; perSecond: number; p50: number; p99: number; apiCpuPerSecond: number; apiCpuMsPerBeat: number; errors: number };
const rows: Row[] = [];

const live = await liveServer({ LEASE_HELD_PER_SOURCE: "10000000" }, 64);
try {
  const { client } = live;
  // A long timeout: no block reaches its latest deadline during the runs.
  await startRangeTask(client, "beaten", volunteers, { timeoutMs: 3_600_000 });
  const tokens = await volunteerTokens(client, volunteers);
  const held = await Promise.all(tokens.map(async (token) => ((await client.post("/api/work/lease", { max: 1, capabilities: { threads: 1 } }, token)).leases[0]?.leaseId as string) ?? null));
  const beaters = tokens.map((token, k) => ({ token, leaseId: held[k] })).filter((v): v is { token: string; leaseId: string } => v.leaseId !== null);
  for (const periodMs of [10_000, 3_000]) {
    const latencies: number[] = [];
    let errors = 0;
    const cpuFrom = treeCpuSeconds(live.server.pid);
    const startedAt = performance.now();
    const endAt = startedAt + seconds * 1000;
    await Promise.all(
      beaters.map(async ({ token, leaseId }, k) => {
        // Spread over one period, as volunteers that started at different times are.
        await sleep((k / beaters.length) * periodMs);
        while (performance.now() < endAt) {
          const sent = performance.now();
          try {
            await client.post("/api/work/heartbeat", { leaseIds: [leaseId] }, token);
            latencies.push(performance.now() - sent);
          } catch {
            errors++;
          }
          await sleep(sent + periodMs - performance.now());
        }
      }),
    );
    const elapsed = (performance.now() - startedAt) / 1000;
    const cpu = treeCpuSeconds(live.server.pid) - cpuFrom;
    const sorted = latencies.sort((a, b) => a - b);
    rows.push({
      periodMs,
      beats: latencies.length,
      perSecond: latencies.length / elapsed,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      apiCpuPerSecond: cpu / elapsed,
      apiCpuMsPerBeat: (cpu * 1000) / Math.max(1, latencies.length),
      errors,
    });
  }
  console.log(`\n${beaters.length} volunteers each beating one block, ${seconds} s a period, one API process on Postgres\n`);
  console.log("| beat every | beats | beats/s | p50 (ms) | p99 (ms) | API CPU (cores) | API CPU a beat (ms) | errors |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.periodMs / 1000} s | ${r.beats} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.apiCpuPerSecond.toFixed(2)} | ${r.apiCpuMsPerBeat.toFixed(2)} | ${r.errors} |`,
    );
  }
  mkdirSync(new URL("./results", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/beats.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), volunteers: beaters.length, seconds, rows }, null, 2));
} finally {
  await live.close();
}
