// Wrong results that win a quorum, with a share of lying volunteers (issue 9):
// 20 % of identities answer wrong, either at random (each its own wrong value) or colluding
// (all the same wrong value). A tenth of the volunteers are the operator's (an admin's, trusted
// from the start: a deployment bootstraps trust from them); every other one starts on probation.
// Volunteers take turns at random through the db modules, on a fresh database of the local
// Postgres server. Prints the share of wrong results accepted.
// Usage: npx node bench/byzantine.bench.ts [chunks] [volunteers]
import { mkdirSync, writeFileSync } from "node:fs";
import { createTask, createUser, createVolunteer, getTaskView } from "@crowdcompute/db";
import { auditVolunteers } from "@crowdcompute/db/audit";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { finalChunksPage, getTaskForResults } from "@crowdcompute/db/reads";
import { createTestDatabase, dropDatabase, leaseChunks, leaseRef, leaseRequest, submitChunks, taskFixture } from "@crowdcompute/db/testing";

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const chunks = Number(process.argv[2] ?? 3000);
const volunteerCount = Number(process.argv[3] ?? 50);
const liarShare = 0.2;
const operatorShare = 0.1;
const honest = (input: number) => (input * 7919) % 10007;

// A deterministic generator, so a run can be repeated.
let seed = Number(process.env.BENCH_SEED ?? 42);
const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

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
      Array.from({ length: volunteerCount }, async (_, i) => ({
        id: (await createVolunteer(db, { name: `v${i}`, userId: null, trusted: i >= volunteerCount * (1 - operatorShare) })).id,
        liar: i < volunteerCount * liarShare,
      })),
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
          return { ...leaseRef(c), result: JSON.stringify(value), cpuMs: 1 };
        }),
      });
    }
    const view = (await getTaskView(db, taskId))!;
    const page = await finalChunksPage(db, (await getTaskForResults(db, taskId))!, -1, chunks + 10);
    const wrong = page.filter((c) => c.status === "done" && JSON.parse(c.result) !== honest(JSON.parse(c.input) as number)).length;
    // Reputation and credit: liars should end banned, honest volunteers never, and every
    // honest vote that matched the accepted result earns exactly what it claimed.
    const liarIds = new Set(volunteers.filter((v) => v.liar).map((v) => v.id));
    const audits = await auditVolunteers(db, taskId);
    const liars = audits.filter((a) => liarIds.has(a.volunteerId));
    const honestOnes = audits.filter((a) => !liarIds.has(a.volunteerId));
    const reputation = (a: { wins: number; losses: number }) => a.wins / Math.max(1, a.wins + a.losses);
    return {
      mode,
      replication,
      quorum,
      chunks,
      done: view.counts.done,
      failed: view.counts.failed,
      wrong,
      wrongShare: wrong / Math.max(1, view.counts.done),
      liarsBanned: liars.filter((a) => a.banned).length,
      liars: liars.length,
      liarReputation: liars.reduce((sum, a) => sum + reputation(a), 0) / Math.max(1, liars.length),
      honestBanned: honestOnes.filter((a) => a.banned).length,
      honest: honestOnes.length,
      honestReputation: honestOnes.reduce((sum, a) => sum + reputation(a), 0) / Math.max(1, honestOnes.length),
      honestCredit: honestOnes.reduce((sum, a) => sum + a.credit, 0),
      honestCreditDue: honestOnes.reduce((sum, a) => sum + a.winningClaims, 0),
    };
  } finally {
    await close();
    await dropDatabase(adminUrl, new URL(url).pathname.slice(1));
  }
}

const rows = [await run("random", 2, 2), await run("colluding", 2, 2)];
console.log(`\n${volunteerCount} volunteers, ${liarShare * 100} % liars, ${operatorShare * 100} % the operator's (trusted), ${chunks} chunks\n`);
console.log("| liars | replication/quorum | done | failed | wrong accepted | share | liars banned | liars' reputation | honest banned | honest reputation | honest credit / due |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.mode} | ${r.replication}/${r.quorum} | ${r.done} | ${r.failed} | ${r.wrong} | ${(r.wrongShare * 100).toFixed(3)} % | ${r.liarsBanned} of ${r.liars} | ${r.liarReputation.toFixed(2)} | ${r.honestBanned} of ${r.honest} | ${r.honestReputation.toFixed(2)} | ${r.honestCredit} / ${r.honestCreditDue} ms |`,
  );
}
console.log("\ntargets: random liars 0 wrong; colluding ≤ 0.1 %; no honest volunteer banned; honest credit = due");
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/byzantine.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), volunteerCount, liarShare, rows }, null, 2));
const missed = rows.filter((r) => (r.mode === "random" ? r.wrong > 0 : r.wrongShare > 0.001) || r.honestBanned > 0 || r.honestCredit !== r.honestCreditDue || r.liarsBanned < r.liars);
if (missed.length > 0) {
  console.error(`\ntargets missed by: ${missed.map((r) => r.mode).join(", ")}`);
  process.exit(1);
}
