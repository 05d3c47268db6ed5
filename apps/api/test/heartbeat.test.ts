import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases, type LeasedBlock } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("heartbeats on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  beforeAll(async () => {
    t = await openTestApp(backend, { leaseGraceMs: 100 });
    creator = (await t.register("hb@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const startTask = async (inputs: unknown[], timeoutMs: number) => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const res = await t.call("POST", "/api/tasks", { token: creator, body: { name: "hb", code: "export default (x) => x", inputs, timeoutMs, start: true } });
    return res.json.task.id as string;
  };
  // One thread: a new task gives 2 chunks a thread, and a block of n chunks is due after n timeouts.
  const lease = async (token: string, max: number) => (await t.call("POST", "/api/work/lease", { token, body: { max, capabilities: { threads: 1 } } })).json.leases as LeasedBlock[];

  it("keeps a beating volunteer's block up to what its chunks need, never past it, and a silent one loses its chunks", async () => {
    await startTask([1, 2], 1000);
    const alive = await t.volunteer();
    const other = await t.volunteer();
    const leases = await lease(alive.token, 2);
    expect(leases.map((b) => [b.firstIndex, b.inputs])).toEqual([[0, [1, 2]]]);
    // What 2 chunks need on 1 thread: 1000 ms · 2 + 100 ms of grace. Beating keeps the block
    // that long (docs/architecture.md, "Bounds on what one volunteer holds")…
    for (let i = 0; i < 4; i++) {
      await sleep(400);
      const beat = await t.call("POST", "/api/work/heartbeat", { token: alive.token, body: { leaseIds: leases.map((l) => l.leaseId) } });
      expect(beat.json).toEqual({ extended: leases.map((l) => l.leaseId), lost: [], cancelled: [] });
    }
    expect(await lease(other.token, 2)).toEqual([]);
    // …and no longer: past it the chunks go to someone else (each alone, as a block of one),
    // and the owner hears it.
    await sleep(900);
    const late = await t.call("POST", "/api/work/heartbeat", { token: alive.token, body: { leaseIds: [leases[0]!.leaseId] } });
    expect(late.json).toEqual({ extended: [], lost: [leases[0]!.leaseId], cancelled: [] });
    const reissued = await lease(other.token, 2);
    expect(reissued.map((b) => [b.firstIndex, b.inputs])).toEqual([
      [0, [1]],
      [1, [2]],
    ]);
    expect(chunksOfLeases(reissued).map((c) => c.index)).toEqual([0, 1]);
  });

  it("tells the volunteer when a task was cancelled", async () => {
    const taskId = await startTask([1], 60_000);
    const v = await t.volunteer();
    const [held] = await lease(v.token, 1);
    await t.call("POST", `/api/tasks/${taskId}/cancel`, { token: creator });
    const beat = await t.call("POST", "/api/work/heartbeat", { token: v.token, body: { leaseIds: [held!.leaseId] } });
    expect(beat.json).toEqual({ extended: [], lost: [], cancelled: [held!.leaseId] });
  });

  it("tells a volunteer a task's name, description and creator's display name and id, and nothing more", async () => {
    // (Running tasks: a volunteer may read only the tasks it may run.)
    const named = await t.call("POST", "/api/auth/register", { body: { email: "lab@example.com", password: "correct horse", name: "The Folding Lab" } });
    expect(named.status).toBe(201);
    const created = await t.call("POST", "/api/tasks", {
      token: named.json.token,
      body: { name: "Protein folds", description: "Scores candidate folds", code: "export default (x) => x", inputs: [1], start: true },
    });
    const { token } = await t.volunteer();
    const summary = await t.call("GET", `/api/tasks/${created.json.task.id}/summary`, { token });
    // The creator's id lets the volunteer exclude all of that creator's tasks from its leases.
    expect(summary.json).toEqual({ id: created.json.task.id, name: "Protein folds", description: "Scores candidate folds", creator: "The Folding Lab", creatorId: named.json.user.id });
    // Without a display name, volunteers see no creator name at all (never the email), only its id.
    const anonymousTask = await t.call("POST", "/api/tasks", { token: creator, body: { name: "x", code: "export default (x) => x", inputs: [1], start: true } });
    const anonymous = await t.call("GET", `/api/tasks/${anonymousTask.json.task.id}/summary`, { token });
    expect(anonymous.json).toEqual({ id: anonymousTask.json.task.id, name: "x", description: "", creator: null, creatorId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(anonymous.json.creatorId).not.toBe(named.json.user.id);
    expect(JSON.stringify(anonymous.json)).not.toContain("@");
    expect((await t.call("GET", `/api/tasks/${created.json.task.id}/summary`)).status).toBe(401);
    expect((await t.call("GET", "/api/tasks/01900000-0000-7000-8000-000000000000/summary", { token })).status).toBe(404);
  });

  it("gives a volunteer that lends part of its CPU proportionally longer deadlines", async () => {
    await startTask([1, 2, 3, 4], 60_000);
    let v = await t.volunteer();
    const leaseFor = async (capabilities: Record<string, unknown>) => {
      const res = await t.call("POST", "/api/work/lease", { token: v.token, body: { max: 2, capabilities } });
      expect(res.status).toBe(200);
      return { leaseId: res.json.leases[0].leaseId as string, deadline: (Date.parse(res.json.leases[0].deadline as string) - Date.now()) / 1000 };
    };
    // 2 chunks on 1 thread, + 0.1 s grace: 120.1 s at full speed, 480.1 s at a quarter (less the
    // round trip), as the latest deadline beats may carry the block to; its first deadline is
    // the silence window (15 s) either way.
    const latestOf = async (_leaseId: string) => {
      const out = (await t.db.execute(sql`SELECT extract(epoch FROM latest - now())::float8 AS span FROM leases WHERE volunteer_id = ${v.volunteer.id} ORDER BY id DESC LIMIT 1`)) as unknown;
      const rows = (Array.isArray(out) ? out : (out as { rows: unknown[] }).rows) as { span: number }[];
      return Number(rows[0]!.span);
    };
    const full = await leaseFor({ threads: 1 });
    expect(full.deadline).toBeGreaterThan(10);
    expect(full.deadline).toBeLessThanOrEqual(15);
    expect(await latestOf(full.leaseId)).toBeGreaterThan(115);
    expect(await latestOf(full.leaseId)).toBeLessThanOrEqual(120.1);
    // Another volunteer: the first one's 2 chunks would count ahead of its block.
    v = await t.volunteer();
    const quarter = await leaseFor({ threads: 1, cpuPercent: 25 });
    expect(quarter.deadline).toBeLessThanOrEqual(15);
    expect(await latestOf(quarter.leaseId)).toBeGreaterThan(475);
    expect(await latestOf(quarter.leaseId)).toBeLessThanOrEqual(480.1);
    for (const cpuPercent of [0, 101, 50.5]) {
      expect((await t.call("POST", "/api/work/lease", { token: v.token, body: { max: 1, capabilities: { cpuPercent } } })).status).toBe(422);
    }
  });

  it("takes a volunteer's progress and checkpoints at most every 500 ms: a beat carrying them sooner is a 429 that writes nothing, a bare beat is not", async () => {
    const taskId = await startTask([1], 60_000);
    const v = await t.volunteer();
    const [held] = await lease(v.token, 1);
    const id = held!.leaseId;
    const progress = (fraction: number) => ({ leaseIds: [id], progress: { [id]: [{ offset: 0, fraction }] } });
    const shown = async () => (await t.call("GET", `/api/tasks/${taskId}/chunks?status=leased`, { token: creator })).json.items[0]?.progress?.fraction;
    expect((await t.call("POST", "/api/work/heartbeat", { token: v.token, body: progress(0.25) })).status).toBe(200);
    const hurried = await t.call("POST", "/api/work/heartbeat", { token: v.token, body: progress(0.5) });
    expect(hurried.status).toBe(429);
    expect(hurried.headers.get("content-type")).toContain("application/problem+json");
    expect(hurried.headers.get("retry-after")).not.toBeNull();
    expect(await shown()).toBe(0.25);
    expect((await t.call("POST", "/api/work/heartbeat", { token: v.token, body: { leaseIds: [id] } })).json).toEqual({ extended: [id], lost: [], cancelled: [] });
    await sleep(500);
    expect((await t.call("POST", "/api/work/heartbeat", { token: v.token, body: progress(0.75) })).status).toBe(200);
    expect(await shown()).toBe(0.75);
  });

  it("refuses forged and foreign lease ids", async () => {
    await startTask([1], 60_000);
    const owner = await t.volunteer();
    const stranger = await t.volunteer();
    const [held] = await lease(owner.token, 1);
    expect((await t.call("POST", "/api/work/heartbeat", { token: stranger.token, body: { leaseIds: [held!.leaseId] } })).status).toBe(403);
    expect((await t.call("POST", "/api/work/heartbeat", { token: owner.token, body: { leaseIds: ["forged"] } })).status).toBe(422);
    expect((await t.call("POST", "/api/work/heartbeat", { token: owner.token, body: { leaseIds: [] } })).status).toBe(422);
  });
});

describe.each(testBackends())("missed beats on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  // A block goes back 1.5 s after its last beat here (15 s by default), its chunk's timeout is 6 s.
  beforeAll(async () => {
    t = await openTestApp(backend, { leaseGraceMs: 100, leaseSilentMs: 1500 });
    creator = (await t.register("missed@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const lease = async (token: string) => {
    const res = await t.call("POST", "/api/work/lease", { token, body: { max: 1, capabilities: { threads: 1 } } });
    expect(res.status, res.text).toBe(200);
    return res.json.leases as LeasedBlock[];
  };
  const beat = async (token: string, ...leaseIds: string[]) => (await t.call("POST", "/api/work/heartbeat", { token, body: { leaseIds } })).json;

  it("gives a silent volunteer's chunk back after the missed beats and leases it again, while a beating one keeps its chunk to its timeout", async () => {
    const created = await t.call("POST", "/api/tasks", { token: creator, body: { name: "silent", code: "export default (x) => x", inputs: [1, 2], timeoutMs: 6000, start: true } });
    expect(created.status).toBe(201);
    const beating = await t.volunteer();
    const silent = await t.volunteer();
    const other = await t.volunteer();
    const [kept] = await lease(beating.token);
    const [gone] = await lease(silent.token);
    expect([kept!.firstIndex, gone!.firstIndex]).toEqual([0, 1]);
    const leasedAt = Date.now();
    // The silent one's chunk comes back once 1.5 s pass without a beat, long before its 6 s
    // timeout, and goes to the next volunteer that asks; the beating one's stays.
    let again: LeasedBlock[] = [];
    while (again.length === 0) {
      await sleep(250);
      expect(await beat(beating.token, kept!.leaseId)).toEqual({ extended: [kept!.leaseId], lost: [], cancelled: [] });
      again = await lease(other.token);
    }
    const backAfterMs = Date.now() - leasedAt;
    expect(again.map((b) => [b.firstIndex, b.inputs])).toEqual([[1, [2]]]);
    expect(backAfterMs).toBeLessThan(6000);
    expect(await beat(silent.token, gone!.leaseId)).toEqual({ extended: [], lost: [gone!.leaseId], cancelled: [] });
    const posted = await t.call("POST", "/api/work/results", { token: other.token, body: { results: [{ leaseId: again[0]!.leaseId, offset: 0, results: [2], errors: [], cpuMs: 1 }] } });
    expect(posted.json.accepted).toBe(1);
    // The beating one keeps chunk 0 up to its timeout (6 s + 0.1 s of grace from its lease),
    // however long past the silence window that is…
    while (Date.now() - leasedAt < 5000) {
      await sleep(400);
      expect(await beat(beating.token, kept!.leaseId)).toEqual({ extended: [kept!.leaseId], lost: [], cancelled: [] });
      expect(await lease(other.token)).toEqual([]);
    }
    // …and no longer: then it hears the chunk is lost, and the chunk is leased again.
    await sleep(Math.max(0, leasedAt + 6300 - Date.now()));
    expect(await beat(beating.token, kept!.leaseId)).toEqual({ extended: [], lost: [kept!.leaseId], cancelled: [] });
    const reissued = await lease(other.token);
    expect(reissued.map((b) => [b.firstIndex, b.inputs])).toEqual([[0, [1]]]);
  });

  it("keeps a block queued behind the running one while the volunteer beats, up to the rounds ahead of it", async () => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const created = await t.call("POST", "/api/tasks", { token: creator, body: { name: "queued", code: "export default (x) => x", inputs: [1, 2], timeoutMs: 2000, start: true } });
    expect(created.status).toBe(201);
    const v = await t.volunteer();
    const other = await t.volunteer();
    // One thread: block A runs first, block B waits its turn behind it.
    const [a] = await lease(v.token);
    const [b] = await lease(v.token);
    expect([a!.firstIndex, b!.firstIndex]).toEqual([0, 1]);
    const leasedAt = Date.now();
    // Beats name both. A is due one timeout after its lease (2 s + 0.1 s), B two (it runs after A),
    // though neither would last the 1.5 s silence window without the beats.
    while (Date.now() - leasedAt < 3200) {
      await sleep(300);
      expect((await beat(v.token, a!.leaseId, b!.leaseId)).extended).toContain(b!.leaseId);
    }
    // A has passed what it needs and went back; B, queued behind it, is still the volunteer's.
    const again = await lease(other.token);
    expect(again.map((block) => block.firstIndex)).toEqual([0]);
    expect(await beat(v.token, b!.leaseId)).toEqual({ extended: [b!.leaseId], lost: [], cancelled: [] });
  });
});
