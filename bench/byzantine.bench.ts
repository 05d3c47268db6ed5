// Wrong results that win a quorum, with a share of lying volunteers (DESIGN §5, issue 9):
// 20 % of identities answer wrong, either at random (each its own wrong value) or colluding
// (all the same wrong value). Volunteers take turns at random through the db modules, on a
// fresh database of the local Postgres server. Prints the share of wrong results accepted.
// Usage: npx node bench/byzantine.bench.ts [chunks] [volunteers]
import { mkdirSync, writeFileSync } from "node:fs";
import { createTask, createUser, createVolunteer, finalChunksPage, getTaskForResults, getTaskView, leaseChunks, submitChunks } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { createTestDatabase, dropDatabase, taskFixture, leaseRequest } from "@crowdcompute/db/testing";

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const chunks = Number(process.argv[2] ?? 3000);
const volunteerCount = Number(process.argv[3] ?? 50);
const liarShare = 0.2;
const honest = (input: number) => (input * 7919) % 10007;

// A deterministic generator, so a run can be repeated.
let seed = Number(process.env.BENCH_SEED ?? 42);
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);

async function run(mode: "random" | "colluding", replication: number, quorum: number) {
  const url = await createTestDatabase(adminUrl);
  const { db, close } = createPostgresDb(url, { max: 4 });
  try {
    const owner = (await createUser(db, { email: "owner@example.com", passwordHash: "x", firstIsAdmin: false }))!;
    const taskId = await createTask(
      db,
      taskFixture(owner.id, { name: "byzantine", replication, quorum, maxAttempts: 5, inputs: { kind: "array", items: Array.from({ length: chunks }, (_, i) => i) } }),
    );
    const volunteers = await Promise.all(
      Array.from({ length: volunteerCount }, async (_, i) => ({ id: (await createVolunteer(db, { name: `v${i}`, userId: null })).id, liar: i < volunteerCount * liarShare })),
    );
    let idleRounds = 0;
    while (idleRounds < volunteerCount * 2) {
      const v = volunteers[Math.floor(random() * volunteers.length)]!;
      const leased = await leaseChunks(db, leaseRequest(v.id, { max: 4, threads: 4, graceMs: 60_000 }));
      if (leased.length === 0) {
        idleRounds++;
        continue;
      }
      idleRounds = 0;
      await submitChunks(db, {
        volunteerId: v.id,
        shard: 0,
        errors: [],
        results: leased.map((c) => {
          const input = Number(c.input);
          const value = !v.liar ? honest(input) : mode === "colluding" ? -1 : -1 - Math.floor(random() * 1e9);
          return { leaseRowId: c.leaseRowId, taskId: c.taskId, index: c.index, result: JSON.stringify(value), cpuMs: 1 };
        }),
      });
    }
    const view = (await getTaskView(db, taskId))!;
    const page = await finalChunksPage(db, (await getTaskForResults(db, taskId))!, -1, chunks + 10);
    const wrong = page.filter((c) => c.status === "done" && JSON.parse(c.result) !== honest(JSON.parse(c.input) as number)).length;
    return { mode, replication, quorum, chunks, done: view.counts.done, failed: view.counts.failed, wrong, wrongShare: wrong / Math.max(1, view.counts.done) };
  } finally {
    await close();
    await dropDatabase(adminUrl, new URL(url).pathname.slice(1));
  }
}

const rows = [await run("random", 2, 2), await run("colluding", 2, 2)];
console.log(`\n${volunteerCount} volunteers, ${liarShare * 100} % liars, ${chunks} chunks\n`);
console.log("| liars | replication/quorum | done | failed | wrong accepted | share |\n|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.mode} | ${r.replication}/${r.quorum} | ${r.done} | ${r.failed} | ${r.wrong} | ${(r.wrongShare * 100).toFixed(3)} % |`);
console.log("\ntargets: random liars 0 wrong; colluding ≤ 0.1 %");
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/byzantine.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), volunteerCount, liarShare, rows }, null, 2));
