// Trust that holds (issue 24), through the db modules on a fresh database of the local
// Postgres server, volunteers taking turns at random:
//  - sybils: 3 and 5 fresh anonymous volunteers agreeing on one wrong value, alone and mixed
//    with honest trusted ones (replication 2 / quorum 2): wrong results accepted, sybils
//    trusted, honest volunteers banned (targets: 0, 0, 0);
//  - spot checks: an honest trusted pool at spotCheck 0.1: copies received a chunk (target ≤ 1.15);
//  - sleepers: trusted volunteers lying on every chunk at spotCheck 0.1, each doing ≥ 100
//    blocks: lies accepted alone before they were caught (all reopened), wrong results in the
//    final download (target 0), sleepers banned (target: all).
// Usage: npx node bench/trust.bench.ts [chunks]
import { mkdirSync, writeFileSync } from "node:fs";
import { createTask, createUser, createVolunteer, getTaskView } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { finalChunksPage, getTaskForResults } from "@crowdcompute/db/reads";
import { createTestDatabase, dropDatabase, leaseChunks, leaseRef, leaseRequest, submitChunks, taskFixture } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const chunks = Number(process.argv[2] ?? 3000);
const honest = (input: number) => (input * 7919) % 10007;
let seed = Number(process.env.BENCH_SEED ?? 42);
const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

type Kind = "honest-trusted" | "honest-fresh" | "sybil" | "sleeper";
interface Scenario {
  name: string;
  pool: Partial<Record<Kind, number>>;
  spotCheck: number;
  chunks: number;
  blockMax: number;
}

async function run(s: Scenario) {
  const url = await createTestDatabase(adminUrl);
  const { db, close } = createPostgresDb(url, { max: 4 });
  try {
    const owner = (await createUser(db, { email: "owner@example.com", passwordHash: "x", firstIsAdmin: false }))!;
    const items = Array.from({ length: s.chunks }, (_, i) => i);
    const taskId = await createTask(db, taskFixture(owner.id, { name: s.name, replication: 2, quorum: 2, maxAttempts: 5, spotCheck: s.spotCheck, inputs: { kind: "array", items } }));
    const volunteers: { id: string; kind: Kind; blocks: number }[] = [];
    for (const [kind, n] of Object.entries(s.pool) as [Kind, number][]) {
      for (let i = 0; i < n; i++) {
        const trusted = kind === "honest-trusted" || kind === "sleeper";
        volunteers.push({ id: (await createVolunteer(db, { name: `${kind}${i}`, userId: null, trusted })).id, kind, blocks: 0 });
      }
    }
    let liesAcceptedAlone = 0;
    const started = performance.now();
    for (let idle = 0; idle < volunteers.length * 3; ) {
      const v = volunteers[Math.floor(random() * volunteers.length)]!;
      const leased = await leaseChunks(db, leaseRequest(v.id, { max: s.blockMax, threads: s.blockMax, graceMs: 60_000 }));
      if (leased.length === 0) {
        idle++;
        continue;
      }
      idle = 0;
      v.blocks++;
      const lying = v.kind === "sybil" || v.kind === "sleeper";
      const outcome = await submitChunks(db, {
        volunteerId: v.id,
        shard: 0,
        errors: [],
        results: leased.map((c) => ({ ...leaseRef(c), result: JSON.stringify(lying ? -1 : honest(Number(c.input))), cpuMs: 1 })),
      });
      // A first copy accepted at once is accepted alone (a copy of a vote that settles it is not a lie's doing).
      if (v.kind === "sleeper" && leased[0]!.copy === 0) liesAcceptedAlone += outcome.inserted;
    }
    const seconds = (performance.now() - started) / 1000;
    const view = (await getTaskView(db, taskId))!;
    const page = await finalChunksPage(db, (await getTaskForResults(db, taskId))!, -1, s.chunks + 10);
    const wrong = page.filter((c) => c.status === "done" && JSON.parse(c.result) !== honest(JSON.parse(c.input) as number)).length;
    const rows = (await db.execute(sql`SELECT id, trusted, banned FROM volunteers`)) as unknown as { id: string; trusted: boolean; banned: boolean }[];
    const state = new Map(rows.map((r) => [r.id, r]));
    const of = (kinds: Kind[]) => volunteers.filter((v) => kinds.includes(v.kind));
    const liars = of(["sybil", "sleeper"]);
    const honestOnes = of(["honest-trusted", "honest-fresh"]);
    return {
      ...s,
      done: view.counts.done,
      failed: view.counts.failed,
      wrong,
      copiesPerChunk: view.verification.copiesReceived / Math.max(1, view.counts.done),
      verification: view.verification,
      liars: liars.length,
      liarsTrusted: liars.filter((v) => state.get(v.id)!.trusted).length,
      liarsBanned: liars.filter((v) => state.get(v.id)!.banned).length,
      liarBlocksMin: liars.length > 0 ? Math.min(...liars.map((v) => v.blocks)) : 0,
      honestBanned: honestOnes.filter((v) => state.get(v.id)!.banned).length,
      liesAcceptedAlone,
      chunksPerSec: view.counts.done / seconds,
    };
  } finally {
    await close();
    await dropDatabase(adminUrl, new URL(url).pathname.slice(1));
  }
}

const scenarios: Scenario[] = [
  { name: "3 sybils alone", pool: { sybil: 3 }, spotCheck: 1, chunks: Math.min(chunks, 300), blockMax: 4 },
  { name: "5 sybils alone", pool: { sybil: 5 }, spotCheck: 1, chunks: Math.min(chunks, 300), blockMax: 4 },
  { name: "3 sybils + honest", pool: { sybil: 3, "honest-trusted": 3, "honest-fresh": 3 }, spotCheck: 1, chunks: Math.min(chunks, 600), blockMax: 4 },
  { name: "5 sybils + honest", pool: { sybil: 5, "honest-trusted": 3, "honest-fresh": 3 }, spotCheck: 1, chunks: Math.min(chunks, 600), blockMax: 4 },
  { name: "spot checks, honest", pool: { "honest-trusted": 12 }, spotCheck: 0.1, chunks, blockMax: 2 },
  { name: "3 sleepers, spot checks", pool: { sleeper: 3, "honest-trusted": 12 }, spotCheck: 0.1, chunks, blockMax: 2 },
];
const rows = [];
for (const s of scenarios) rows.push(await run(s));
console.log(`\nreplication 2 / quorum 2, volunteers taking turns at random (seed ${process.env.BENCH_SEED ?? 42})\n`);
console.log(
  "| scenario | spotCheck | chunks | done | wrong accepted (final) | copies / chunk done | liars trusted | liars banned | liars' blocks (min) | sleepers' lies accepted alone, then reopened | honest banned |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.spotCheck} | ${r.chunks} | ${r.done} | ${r.wrong} | ${r.copiesPerChunk.toFixed(3)} | ${r.liarsTrusted} of ${r.liars} | ${r.liarsBanned} of ${r.liars} | ${r.liarBlocksMin} | ${r.liesAcceptedAlone} | ${r.honestBanned} |`,
  );
}
console.log("\ntargets: 0 wrong accepted; no liar trusted; no honest volunteer banned; every sleeper banned; spot checks of an honest pool ≤ 1.15 copies a chunk");
mkdirSync(new URL("./results", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/trust.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
const missed = rows.filter((r) => r.wrong > 0 || r.liarsTrusted > 0 || r.honestBanned > 0 || (r.pool.sleeper ?? 0) > r.liarsBanned || (r.name === "spot checks, honest" && r.copiesPerChunk > 1.15));
if (missed.length > 0) {
  console.error(`\ntargets missed by: ${missed.map((r) => r.name).join(", ")}`);
  process.exit(1);
}
