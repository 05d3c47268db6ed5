// The abuse bench (issue 25): each attack of bench/abuse/*.scenario.ts against a fresh API
// process (the bundle `npm start` runs), beside a steady stream of normal requests (a
// creator reading its task, lean volunteers leasing and reporting), then one table: the
// normal requests' p50/p99 and errors, what the attack got back, the API's peak RSS, and
// whether it stayed up. The first row of each database is the same stream without attack.
// Timings are printed, never asserted (the tests in apps/api/test/abuse-*.test.ts run the
// same attacks and check what must hold).
// Usage: npx node bench/abuse.bench.ts [seconds per attack] [scenario names, e.g. heartbeat-flood,login-race]
//   BENCH_ABUSE_BACKENDS=postgres,pglite (default both; DATABASE_URL names the Postgres server)
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type AbuseBackend, type AbuseRow, type AbuseScenario, abuseTable, harnessEnv, runAbuseScenario } from "./abuse/harness.ts";

const seconds = Number(process.argv[2] ?? process.env.BENCH_ABUSE_SECONDS ?? 10);
const only = process.argv[3]?.split(",");
const backends = (process.env.BENCH_ABUSE_BACKENDS ?? "postgres,pglite").split(",") as AbuseBackend[];
const dir = fileURLToPath(new URL("./abuse/", import.meta.url));
const files = readdirSync(dir)
  .filter((name) => name.endsWith(".scenario.ts"))
  .filter((name) => !only || only.includes(name.replace(/\.scenario\.ts$/, "")))
  .sort();
const scenarios: AbuseScenario<any>[] = [];
for (const file of files) scenarios.push((await import(`${dir}${file}`)).default as AbuseScenario<any>);

console.log(
  `${seconds} s per attack; every API process runs with ${Object.entries(harnessEnv)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`,
);
for (const s of scenarios)
  if (s.env)
    console.log(
      `  ${s.name} also sets ${Object.entries(s.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );

const rows: AbuseRow[] = [];
for (const backend of backends) {
  for (const scenario of [null, ...scenarios]) {
    process.stdout.write(`${scenario?.name ?? "no attack"} on ${backend}… `);
    const row = await runAbuseScenario(scenario, { backend, seconds });
    rows.push(row);
    console.log(`p99 ${row.p99Ms.toFixed(1)} ms, peak RSS ${row.peakRssMb.toFixed(0)} MiB${row.normalErrorSample ? `, e.g. ${row.normalErrorSample}` : ""}`);
  }
}
console.log(`\n${abuseTable(rows)}\n`);
for (const s of scenarios) console.log(`- ${s.name}: ${s.attack}`);
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/abuse.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), seconds, rows }, null, 2));
const failed = rows.filter((r) => !r.serverUp || r.problems.length > 0);
if (failed.length > 0) {
  console.error(`\nDOWN OR CHANGED under ${failed.map((r) => `${r.scenario}/${r.backend}`).join(", ")}: a bug to fix`);
  process.exit(1);
}
