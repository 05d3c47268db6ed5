// `npm run bench`: runs every bench/*.bench.ts in turn (byzantine, dispatch, polling — the
// 2,000-volunteer load run, scale-out, …), each printing its table and writing
// bench/results/<name>.json. `npm run bench -- scaleout polling` runs only those; any
// further arguments are passed on to each bench run.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const all = readdirSync(dir)
  .filter((name) => name.endsWith(".bench.ts"))
  .sort();
const args = process.argv.slice(2);
const named = args.filter((arg) => all.includes(`${arg}.bench.ts`));
const benches = named.length > 0 ? all.filter((name) => named.includes(name.replace(/\.bench\.ts$/, ""))) : all;
const passed = args.filter((arg) => !named.includes(arg));
const failed: string[] = [];
for (const name of benches) {
  console.log(`\n=== bench/${name}`);
  const started = performance.now();
  const { status } = spawnSync(process.execPath, [`${dir}${name}`, ...passed], { stdio: "inherit" });
  console.log(`=== bench/${name}: ${status === 0 ? "done" : `exit ${status}`} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (status !== 0) failed.push(`${name} (exit ${status})`);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(", ")}`);
  process.exit(1);
}
