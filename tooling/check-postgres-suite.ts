// Fails CI when DATABASE_URL was set but no test ran against the real Postgres server:
// a suite that silently skipped would otherwise look green.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

type Report = { testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[] };

const reportsDir = fileURLToPath(new URL("../.reports", import.meta.url));
let passed = 0;
let failed = 0;
for (const file of readdirSync(reportsDir).filter((name) => name.endsWith(".json"))) {
  const report = JSON.parse(readFileSync(join(reportsDir, file), "utf8")) as Report;
  for (const result of report.testResults.flatMap((suite) => suite.assertionResults)) {
    if (![...result.ancestorTitles, result.title].some((title) => /postgres/i.test(title))) continue;
    if (result.status === "passed") passed++;
    else failed++;
  }
}
console.log(`real-Postgres tests: ${passed} passed, ${failed} not passed`);
if (passed === 0 || failed > 0) process.exit(1);
