// `npm run bench`: runs every bench/*.bench.ts in turn, each printing its table.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const benches = readdirSync(dir).filter((name) => name.endsWith(".bench.ts")).sort();
const failed: string[] = [];
for (const name of benches) {
  console.log(`\n=== bench/${name}`);
  const { status } = spawnSync(process.execPath, [`${dir}${name}`, ...process.argv.slice(2)], { stdio: "inherit" });
  if (status !== 0) failed.push(`${name} (exit ${status})`);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(", ")}`);
  process.exit(1);
}
