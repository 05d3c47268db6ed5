// The hash search from a Node script, with the SDK's job API (`@crowdcompute/sdk/node`): one
// call bundles work.js (and @noble/hashes) and starts a range task; each result is checked
// with Node's own sha256 as volunteers decide it. Exit 1 if any chunk failed or was wrong.
// Usage, with a server and a volunteer running:
//   CROWDCOMPUTE_API_KEY=$(npx --no crowdcompute keys create --name job) node examples/hash-search/job.js [end] [chunk size]
import { createHash } from "node:crypto";
import { createClient } from "@crowdcompute/sdk/node";

const token = process.env.CROWDCOMPUTE_API_KEY;
if (!token) {
  console.error("set CROWDCOMPUTE_API_KEY (make one with `npx --no crowdcompute keys create`)");
  process.exit(2);
}
const end = Number(process.argv[2] ?? 10_000_000);
const size = Number(process.argv[3] ?? 100_000);

const cc = createClient({ baseUrl: process.env.CROWDCOMPUTE_SERVER ?? "http://localhost:8787", token });
const job = await cc.compute({ start: 0, end, step: 1, size }, new URL("./work.js", import.meta.url), { name: "hash search (job API)", timeoutMs: 60_000 });
console.error(`task ${job.id}: ${job.task.counts.total} chunks`);

let checked = 0;
let hits = 0;
let wrong = 0;
job.on("result", (line) => {
  checked += 1;
  if (line.status !== "done") {
    console.error(`chunk ${line.index} failed: ${line.error.kind}: ${line.error.message}`);
    wrong += 1;
    return;
  }
  const { start, end: stop, step } = line.input;
  const expected = [];
  for (let n = start; n < stop; n += step) {
    const hash = createHash("sha256").update(`crowdcompute:${n}`).digest("hex");
    if (hash.startsWith("0000")) expected.push(`${n}:${hash}`);
  }
  if (expected.join() !== line.result.hits.map((hit) => `${hit.nonce}:${hit.hash}`).join()) {
    console.error(`chunk ${line.index}: expected ${expected.join(" ")}, got ${JSON.stringify(line.result.hits)}`);
    wrong += 1;
  }
  hits += line.result.hits.length;
});
let shown = "";
job.on("progress", (task) => {
  const now = `${task.counts.done + task.counts.failed}/${task.counts.total} chunks, ${task.status}`;
  if (now !== shown) console.error((shown = now));
});
job.on("error", (error) => console.error(`lost the server: ${error.message}`));

const task = await job.done();
console.log(`${checked} chunks checked, ${hits} hits, ${wrong} wrong`);
process.exit(task.status === "done" && wrong === 0 && checked === task.counts.total ? 0 : 1);
