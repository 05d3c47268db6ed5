// Run by .ci/run after `npm test`: fails when DATABASE_URL was set but no test ran against
// the real Postgres server (a silently skipped suite would otherwise look green), and
// prints the whole run's totals as one closing line.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

type Report = { testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[] };

const reportsDir = fileURLToPath(new URL("../.reports", import.meta.url));
if (!existsSync(reportsDir)) {
  console.error(`no test reports in ${reportsDir}: did npm test run?`);
  process.exit(1);
}
const totals = { passed: 0, failed: 0, skipped: 0 };
const postgres = { passed: 0, other: 0 };
for (const file of readdirSync(reportsDir).filter((name) => name.endsWith(".json"))) {
  const report = JSON.parse(readFileSync(join(reportsDir, file), "utf8")) as Report;
  for (const result of report.testResults.flatMap((suite) => suite.assertionResults)) {
    if (result.status === "passed") totals.passed++;
    else if (result.status === "failed") totals.failed++;
    else totals.skipped++;
    if (![...result.ancestorTitles, result.title].some((title) => /postgres/i.test(title))) continue;
    if (result.status === "passed") postgres.passed++;
    else postgres.other++;
  }
}
console.log(`real-Postgres tests passed: ${postgres.passed}; not passed: ${postgres.other}`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
if (postgres.passed === 0 || postgres.other > 0 || totals.failed > 0 || totals.skipped > 0) process.exit(1);
