// Lease hoarding (issue 25, item 3) and heartbeat races (item 9), with the attack itself, on
// every backend: a volunteer looping the largest lease requests and heartbeating what it got
// while honest volunteers lease and report; several anonymous identities of one network
// source; sixteen heartbeats at once carrying checkpoints for one lease. What must hold: the
// others still get work, the hoarder's chunks stay under the bounds and go back at their
// latest deadline, nothing is lost (every chunk done exactly once), and no 500.
// docs/architecture.md, "Bounds on what one volunteer holds".
import { auditTask } from "@crowdcompute/db/audit";
import { testBackends } from "@crowdcompute/db/testing";
import type { LeasedBlock } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppContext } from "../src/lib/context.ts";
import { openTestApp, type TestApp } from "./harness.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// In process there is no socket: each request says its address, as a trusted proxy would.
const clientIp = (c: AppContext) => c.req.header("x-test-address") ?? null;
const from = (address: string) => ({ "x-test-address": address });
const attacker = "203.0.113.66";
const greedy = { bufferMs: 600_000, capabilities: { threads: 256 } };

describe.each(testBackends())("a hoarding volunteer on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  beforeAll(async () => {
    t = await openTestApp(backend, { leaseBounds: { perVolunteer: 4096, perSource: 6000, maxThreads: 64, maxBufferMs: 60_000 } }, { clientIp });
    creator = (await t.register("hoarding@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const startTask = async (chunks: number, timeoutMs = 60_000) => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const res = await t.call("POST", "/api/tasks", { token: creator, body: { name: "hoard me", code: "export default (x) => x", range: { start: 0, end: chunks, size: 1 }, timeoutMs, start: true } });
    expect(res.status).toBe(201);
    return res.json.task.id as string;
  };
  const volunteer = async (address: string) => (await t.call("POST", "/api/volunteers", { body: { name: "v" }, headers: from(address) })).json.token as string;
  const lease = async (token: string, address: string, body: Record<string, unknown>) => {
    const res = await t.call("POST", "/api/work/lease", { token, body, headers: from(address) });
    expect(res.status).toBe(200);
    return res.json as { leases: LeasedBlock[]; retryAfterMs: number };
  };
  const report = async (token: string, address: string, blocks: LeasedBlock[]) => {
    const res = await t.call("POST", "/api/work/results", {
      token,
      headers: from(address),
      body: { results: blocks.map((b) => ({ leaseId: b.leaseId, results: b.inputs.map(() => 1), cpuMs: b.inputs.length })) },
    });
    expect(res.status).toBe(200);
  };
  const chunks = (blocks: LeasedBlock[]) => blocks.reduce((n, b) => n + b.inputs.length, 0);
  const heldRows = async (where: ReturnType<typeof sql>) => {
    const out = (await t.db.execute(sql`SELECT coalesce(sum(n - bit_count(reported)), 0)::int AS n FROM leases WHERE NOT reclaimed AND deadline > now() AND ${where}`)) as unknown;
    const rows = (Array.isArray(out) ? out : (out as { rows: { n: number }[] }).rows) as { n: number }[];
    return Number(rows[0]!.n);
  };

  it("loops the largest requests from two identities and beats what it got while three volunteers work: they get the task, it keeps a share, and every chunk is done once", async () => {
    const taskId = await startTask(3000);
    const honest = await Promise.all([1, 2, 3].map((k) => volunteer(`198.51.100.${k}`)));
    // Two identities of one address: together they are one party, with one share.
    const hoarders = [await volunteer(attacker), await volunteer(attacker)];
    let attacking = true;
    let honestDone = 0;
    let peakTaskHeld = 0;
    const grabbed: LeasedBlock[][] = [[], []];
    const work = async (token: string, k: number) => {
      for (let idle = 0; idle < 30; ) {
        const { leases } = await lease(token, `198.51.100.${k + 1}`, { max: 64, capabilities: { threads: 4 } });
        if (leases.length === 0) {
          idle += 1;
          await sleep(20);
          continue;
        }
        await report(token, `198.51.100.${k + 1}`, leases);
        honestDone += chunks(leases);
      }
    };
    const honestWork = Promise.all(honest.map(work));
    await sleep(50); // the honest volunteers are asking for work
    for (let round = 0; round < 20 && attacking; round++) {
      const answers = await Promise.all(hoarders.flatMap((token, h) => Array.from({ length: 2 }, async () => ({ h, answer: await lease(token, attacker, greedy) }))));
      for (const { h, answer } of answers) {
        grabbed[h]!.push(...answer.leases);
        if (answer.leases.length === 0) expect(answer.retryAfterMs).toBeGreaterThan(0);
      }
      for (const [h, token] of hoarders.entries()) {
        if (grabbed[h]!.length === 0) continue;
        const beat = await t.call("POST", "/api/work/heartbeat", { token, headers: from(attacker), body: { leaseIds: grabbed[h]!.slice(-256).map((b) => b.leaseId) } });
        expect(beat.status).toBe(200);
      }
      peakTaskHeld = Math.max(peakTaskHeld, await heldRows(sql`source = ${attacker}`));
    }
    attacking = false;
    await honestWork;
    // Four volunteers asking for 3000 chunks: the hoarder holds at most an equal share.
    expect(peakTaskHeld).toBeLessThanOrEqual(750);
    expect(honestDone).toBeGreaterThanOrEqual(3000 - 750);
    expect(honestDone + (await heldRows(sql`source = ${attacker}`))).toBe(3000);
    // However long it beats, no block of it outlives what its chunks need at its threads.
    const over = (await t.db.execute(sql`SELECT count(*)::int AS n FROM leases WHERE source = ${attacker} AND deadline > latest`)) as unknown;
    expect(Number(((Array.isArray(over) ? over : (over as { rows: unknown[] }).rows)[0] as { n: number }).n)).toBe(0);
    // It gives up; the rest goes to the honest volunteers, and every chunk is done exactly once.
    for (const [h, token] of hoarders.entries()) {
      if (grabbed[h]!.length === 0) continue;
      const released = await t.call("POST", "/api/work/release", { token, headers: from(attacker), body: { leaseIds: grabbed[h]!.map((b) => b.leaseId).slice(0, 256) } });
      expect(released.status).toBe(200);
    }
    await Promise.all(honest.map(work));
    const audit = await auditTask(t.db, taskId);
    expect(audit).toMatchObject({ total: 3000, resultChunks: 3000, overlaps: 0, outOfRange: 0, failedChunks: 0, openChunks: 0, counters: { done: 3000 } });
  });

  it("bounds what one volunteer, and one anonymous source, hold: beyond it, no leases and when to ask again", async () => {
    await startTask(100_000);
    // Timing learned (tiny chunks), so a request's buffer asks for the largest blocks.
    const measurer = await volunteer("198.51.100.50");
    await report(measurer, "198.51.100.50", (await lease(measurer, "198.51.100.50", { max: 16, capabilities: { threads: 8 } })).leases);
    await sleep(150); // the candidate tasks a process keeps for 100 ms now say it is timed
    const identities = await Promise.all([1, 2, 3].map(() => volunteer(attacker)));
    const ids = identities.map((token) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).sub as string);
    let refused = 0;
    for (let round = 0; round < 6; round++) {
      const answers = await Promise.all(identities.flatMap((token) => [lease(token, attacker, greedy), lease(token, attacker, greedy)]));
      for (const answer of answers) if (answer.leases.length === 0 && answer.retryAfterMs > 0) refused += 1;
      for (const id of ids) expect(await heldRows(sql`volunteer_id = ${id}`)).toBeLessThanOrEqual(4096);
      expect(await heldRows(sql`source = ${attacker}`)).toBeLessThanOrEqual(6000);
    }
    expect(await heldRows(sql`source = ${attacker}`)).toBe(6000);
    expect(refused).toBeGreaterThan(0);
    // Another source, and an account's volunteer, are not held back by it.
    const elsewhere = await volunteer("198.51.100.77");
    expect(chunks((await lease(elsewhere, "198.51.100.77", { max: 100, capabilities: { threads: 1 } })).leases)).toBe(100);
  });

  it("answers sixteen concurrent heartbeats carrying checkpoints for one lease without a 500", async () => {
    await startTask(16);
    const token = await volunteer("198.51.100.90");
    const { leases } = await lease(token, "198.51.100.90", { max: 16, capabilities: { threads: 16 } });
    const [block] = leases;
    const state = { text: "é€".repeat(4096) };
    const beat = () =>
      t.call("POST", "/api/work/heartbeat", {
        token,
        headers: from("198.51.100.90"),
        body: {
          leaseIds: [block!.leaseId],
          progress: { [block!.leaseId]: Array.from({ length: 16 }, (_, offset) => ({ offset, fraction: 0.5 })) },
          checkpoints: { [block!.leaseId]: Array.from({ length: 16 }, (_, offset) => ({ offset, state })) },
        },
      });
    // A volunteer's beats are handled one at a time (one more may wait): the rest are told to
    // come back, and none holds a database connection waiting on the others.
    const answers = await Promise.all(Array.from({ length: 16 }, beat));
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused.map((a) => `${a.status} ${a.text}`).filter((s) => !/^(429|503) /.test(s))).toEqual([]);
    for (const answer of refused) expect(answer.headers.get("retry-after")).not.toBeNull();
    // The one waiting its turn comes less than 500 ms after the first: it may be refused too, as
    // beats carrying progress or checkpoints are taken at most every 500 ms.
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    // Sent one after another, half a second apart, every beat is answered.
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await beat()).status).toBe(200);
    }
  });
});
