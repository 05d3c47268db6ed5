// A vanished volunteer's chunk comes back in seconds (docs/architecture.md, "Dispatch"): the real
// `crowdcompute volunteer` (headless Chromium) computes one chunk of 60 s with a 90 s timeout and
// is killed 30 s in (SIGKILL, its Chromium too); a lean HTTP volunteer asks for work every 250 ms,
// and the bench prints how long after the kill it got the chunk. Run with the silence window
// (LEASE_SILENT_MS, 15 s: five missed 3 s beats) and, as the peer in the same run, with the old
// rule (the window past timeout + grace, so the chunk waits for its deadline).
// Usage: npx node bench/vanished.bench.ts [old|new|both]   (DATABASE_URL names the Postgres server)
import { mkdirSync, writeFileSync } from "node:fs";
import { liveServer, sleep } from "./api-process.ts";
import { cliVolunteer } from "./cli-volunteer.ts";

const chunkMs = 60_000;
const timeoutMs = 90_000;
const killAfterMs = 30_000;
const which = process.argv[2] ?? "both";
// The work waits rather than spins: the machine is shared, and the lease does not care.
const code = `export default async function work(input, ctx) {
  for (let s = 1; s <= ${chunkMs / 1000}; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ctx.progress(s / ${chunkMs / 1000});
  }
  return input;
}`;

type Row = { rule: string; silentMs: string; leasedAgainAfterKillS: number };
const rows: Row[] = [];

async function run(rule: "new" | "old"): Promise<void> {
  // The old rule: beats extend to now + timeout + grace and a first deadline is timeout + grace.
  const env: Record<string, string> = rule === "new" ? {} : { LEASE_SILENT_MS: String(10 * (timeoutMs + 30_000)) };
  const live = await liveServer(env);
  const volunteer = cliVolunteer(live.server.base);
  try {
    const { task } = await live.client.post("/api/tasks", { name: "vanished", code, inputs: [1], timeoutMs, start: true }, live.token);
    const leasedAt = await (async () => {
      for (;;) {
        const view = (await live.client.get(`/api/tasks/${task.id}`, live.token)).task;
        if (view.counts.leased > 0) return Date.now();
        if (volunteer.child.exitCode !== null) throw new Error(`the volunteer exited: ${volunteer.output()}`);
        await sleep(100);
      }
    })();
    await sleep(leasedAt + killAfterMs - Date.now());
    await volunteer.kill();
    const killedAt = Date.now();
    const { token } = await live.client.post("/api/volunteers", { name: "lean" });
    for (;;) {
      const answer = await live.client.post("/api/work/lease", { max: 1, capabilities: { threads: 1 } }, token);
      if (answer.leases.length > 0) break;
      await sleep(250);
    }
    const seconds = (Date.now() - killedAt) / 1000;
    rows.push({ rule, silentMs: env.LEASE_SILENT_MS ?? "15000 (default)", leasedAgainAfterKillS: seconds });
    console.error(`${rule}: leased again ${seconds.toFixed(1)} s after the kill`);
  } finally {
    await volunteer.kill();
    await live.close();
  }
}

if (which !== "old") await run("new");
if (which !== "new") await run("old");

console.log(`\nA CLI volunteer killed ${killAfterMs / 1000} s into a ${chunkMs / 1000} s chunk with a ${timeoutMs / 1000} s timeout (Postgres): when the chunk is leased again\n`);
console.log("| rule | LEASE_SILENT_MS | leased again after the kill (s) |");
console.log("|---|---|---|");
for (const row of rows) console.log(`| ${row.rule === "new" ? "five missed 3 s beats" : "old: timeout + 30 s grace"} | ${row.silentMs} | ${row.leasedAgainAfterKillS.toFixed(1)} |`);
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/vanished.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), chunkMs, timeoutMs, killAfterMs, rows }, null, 2));
const slow = rows.find((row) => row.rule === "new" && row.leasedAgainAfterKillS > 30);
if (slow) {
  console.error(`the chunk came back ${slow.leasedAgainAfterKillS.toFixed(1)} s after the kill: over the 30 s target`);
  process.exit(1);
}
