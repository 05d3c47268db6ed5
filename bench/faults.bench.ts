// The fault suite at full size (issue 9): a 10,000-chunk task computed by real browser
// volunteers and simulated HTTP volunteers while volunteers are killed, the API process is
// killed and restarted, Postgres restarts, or one of two API processes dies. Prints what was
// lost or counted twice (nothing, or the run fails) and how long recovery took.
// Usage: npx node bench/faults.bench.ts [chunks] [browsers] [simulated]
//   (or BENCH_FAULT_CHUNKS …; DATABASE_URL names the Postgres server, as for the others)
import { mkdirSync, writeFileSync } from "node:fs";
import type { Backend } from "@crowdcompute/db/testing";
import { type Fault, runFaultScenario, type ScenarioReport } from "../apps/api/test/faults/scenario.ts";

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const chunks = Number(process.env.BENCH_FAULT_CHUNKS ?? process.argv[2] ?? 10_000);
const browsers = Number(process.env.BENCH_FAULT_BROWSERS ?? process.argv[3] ?? 4);
const simulated = Number(process.env.BENCH_FAULT_SIMULATED ?? process.argv[4] ?? 8);

const scenarios: [Fault, Backend][] = [
  ["volunteers", "pglite"],
  ["volunteers", "postgres"],
  ["api-restart", "pglite"],
  ["api-restart", "postgres"],
  ["postgres-restart", "postgres"],
  ["api-failover", "postgres"],
];

const reports: ScenarioReport[] = [];
for (const [fault, backend] of scenarios) {
  process.stdout.write(`${fault} on ${backend}… `);
  const report = await runFaultScenario({ fault, backend, adminUrl, chunks, browsers, simulated, finishWithinMs: 300_000 });
  reports.push(report);
  console.log(report.problems.length === 0 ? `ok in ${report.seconds.toFixed(1)} s` : `PROBLEMS: ${report.problems.join("; ")}`);
}

console.log(`\n${chunks} chunks, ${browsers} browser volunteers (Chromium, 1 thread) + ${simulated} simulated HTTP volunteers\n`);
console.log("| fault | database | done at fault | volunteers killed | by browsers | seconds | done | missing | twice | wrong | counters & credit | 503s seen | other 5xx |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of reports) {
  const countersOk = r.problems.every((p) => !/counters|credit|counted|rows|open/.test(p));
  console.log(
    `| ${r.fault} | ${r.backend} | ${r.doneAtFault} | ${r.volunteersKilled} | ${r.browserChunks} | ${r.seconds.toFixed(1)} | ${r.counts.done ?? "?"} | ${r.missing} | ${r.duplicated} | ${r.wrong} | ${countersOk ? "exact" : "WRONG"} | ${r.unavailable} | ${r.serverErrors} |`,
  );
}
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/faults.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), chunks, browsers, simulated, reports }, null, 2));
const failed = reports.filter((r) => r.problems.length > 0);
if (failed.length > 0) {
  console.error(`\nLOST OR DOUBLED in ${failed.map((r) => `${r.fault}/${r.backend}`).join(", ")}: a bug to fix`);
  process.exit(1);
}
