// Every package's Vitest run also writes a JSON report under .reports/, so CI can check
// that the real-Postgres suite actually ran (tooling/check-postgres-suite.ts).
import { fileURLToPath } from "node:url";

const reportsDir = fileURLToPath(new URL("../.reports", import.meta.url));

export function reporters(name: string): (string | [string, Record<string, unknown>])[] {
  return ["default", ["json", { outputFile: `${reportsDir}/${name}.json` }]];
}
