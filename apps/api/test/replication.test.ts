import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";
import { sseReader } from "./sse.ts";

describe.each(testBackends())("replicated tasks through the API on %s", (backend) => {
  let t: TestApp;
  let creator: string;
  let admin: string;

  beforeAll(async () => {
    t = await openTestApp(backend, {}, {});
    admin = (await t.register("first-admin@example.com")).token;
    creator = (await t.register("replicator@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  it("compares copies by their canonical JSON, so key order and spacing do not split a vote", async () => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const task = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "r2", code: "export default (x) => x", inputs: [1], replication: 2, quorum: 2, start: true } })).json.task;
    expect(task).toMatchObject({ replication: 2, quorum: 2 });
    const shapes = [
      { a: 1, b: [true, null] },
      { b: [true, null], a: 1.0 },
      { a: 1, b: [true, null] },
    ];
    const tokens: string[] = [];
    for (const [i, shape] of shapes.entries()) {
      // Two fresh volunteers, then the admin's, trusted (docs/architecture.md, "Replication, trust and reduce").
      const { token } = await t.volunteer(i === 2 ? admin : undefined);
      tokens.push(token);
      const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max: 4, capabilities: { threads: 2 } } })).json;
      expect(chunksOfLeases(leases).map((c) => [c.index, c.input])).toEqual([[0, 1]]);
      // Counted CPU time is at most what the server saw pass since the lease: date it back a
      // minute, so that the claimed cpuMs is what bounds the credit.
      await t.db.execute(sql`UPDATE leases SET created_at = created_at - interval '1 minute' WHERE task_id = ${task.id}`);
      const posted = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, results: [shape], cpuMs: 3 }] } });
      expect(posted.json.accepted).toBe(1);
      const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task;
      // Two fresh volunteers agreeing wait for a trusted one: the admin's agreeing copy settles it.
      expect(view.status).toBe(i < 2 ? "running" : "done");
      // What the chunk waits for (issue 28): after one copy, one more agreeing copy; after two
      // fresh ones that agree, a trusted volunteer's copy, which more fresh copies cannot replace.
      if (i < 2) {
        const [chunk] = (await t.call("GET", `/api/tasks/${task.id}/chunks?status=voting`, { token: creator })).json.items;
        expect(chunk.waitingFor).toEqual(i === 0 ? { reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 } : { reason: "trustedCopy", agreeing: 2, moreAgreeing: 1, copiesOut: 0 });
        expect(view.waiting).toEqual(i === 0 ? { trustedCopy: 0, moreCopies: 1, examined: 1 } : { trustedCopy: 1, moreCopies: 0, examined: 1 });
      } else expect(view.waiting).toBeNull();
    }
    const lines = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator })).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([{ index: 0, input: 1, status: "done", result: { a: 1, b: [true, null] } }]);
    // What verification cost: three copies for one chunk, which agreed.
    const { verification } = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task;
    expect(verification).toEqual({ copiesReceived: 3, chunksReplicated: 1, disagreements: 0, volunteersBanned: 0 });
    // Every copy on the winning side earns credit, bounded by the cpuMs it claimed.
    let credit = 0;
    for (const token of tokens) {
      const figures = (await t.call("GET", "/api/volunteers/me", { token })).json;
      expect(figures.credit).toBeLessThanOrEqual(3);
      expect(figures).not.toHaveProperty("banned");
      credit += figures.credit;
    }
    expect(credit).toBeGreaterThan(0);
    expect((await t.call("GET", "/api/volunteers/me", { token: creator })).status).toBe(403);
  });

  it("compares copies within a task's tolerance; the first trusted copy's value is the result", async () => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const body = { name: "floats", code: "export default (x) => x", inputs: [1], replication: 2, quorum: 2, tolerance: { rel: 1e-9 }, start: true };
    const task = (await t.call("POST", "/api/tasks", { token: creator, body })).json.task;
    expect(task).toMatchObject({ replication: 2, quorum: 2, tolerance: { rel: 1e-9 } });
    const report = async (token: string, result: unknown) => {
      const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max: 4, capabilities: { threads: 2 } } })).json;
      return t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, results: [result], cpuMs: 3 }] } });
    };
    const fresh = (await t.volunteer()).token;
    // A JSON body cannot carry NaN: the worker's NaN would have been sent as null.
    const { leases } = (await t.call("POST", "/api/work/lease", { token: fresh, body: { max: 4, capabilities: { threads: 2 } } })).json;
    const nan = await t.call("POST", "/api/work/results", { token: fresh, raw: `{"results":[{"leaseId":${JSON.stringify(leases[0].leaseId)},"results":[NaN]}]}` });
    expect(nan.status).toBe(400);
    expect(nan.type).toMatch(/problem\+json/);
    expect((await t.call("POST", "/api/work/results", { token: fresh, body: { results: [{ leaseId: leases[0].leaseId, results: [{ x: 0.30000000000000004 }], cpuMs: 3 }] } })).json.accepted).toBe(1);
    expect((await report((await t.volunteer(admin)).token, { x: 0.3 })).json.accepted).toBe(1);
    const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task;
    expect(view).toMatchObject({ status: "done", tolerance: { rel: 1e-9 } });
    const lines = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator })).text.trim().split("\n");
    expect(lines.map((l) => JSON.parse(l).result)).toEqual([{ x: 0.3 }]);
    // A clone keeps the tolerance unless told otherwise; null makes it exact again.
    expect((await t.call("POST", `/api/tasks/${task.id}/clone`, { token: creator, body: {} })).json.task.tolerance).toEqual({ rel: 1e-9 });
    expect((await t.call("POST", `/api/tasks/${task.id}/clone`, { token: creator, body: { tolerance: { abs: 2 } } })).json.task.tolerance).toEqual({ abs: 2 });
    expect((await t.call("POST", `/api/tasks/${task.id}/clone`, { token: creator, body: { tolerance: null } })).json.task.tolerance).toBeNull();
    expect((await t.call("POST", "/api/tasks", { token: creator, body: { name: "exact", code: "export default (x) => x", inputs: [1] } })).json.task.tolerance).toBeNull();
  });

  it("refuses a bad tolerance with a problem that names it, storing nothing", async () => {
    const taskCount = async () => {
      const rows = (await t.db.execute(sql`SELECT count(*)::int AS n FROM tasks`)) as unknown as { n: number }[] & { rows?: { n: number }[] };
      return (rows.rows ?? rows)[0]!.n;
    };
    const before = await taskCount();
    for (const tolerance of [{}, { abs: -1 }, { rel: "0.1" }, { abs: 1, ulps: 2 }, 0.1, { rel: null }]) {
      const res = await t.call("POST", "/api/tasks", { token: creator, body: { name: "bad", code: "export default (x) => x", inputs: [1], replication: 2, quorum: 2, tolerance } });
      expect({ tolerance, status: res.status }).toEqual({ tolerance, status: 422 });
      expect(res.type).toMatch(/problem\+json/);
      expect(res.json.errors.map((e: { path: string }) => e.path).join(" ")).toMatch(/tolerance/);
    }
    expect(await taskCount()).toBe(before);
  });

  it("takes a spotCheck share in (0, 1]: a trusted volunteer's block is then accepted on one copy but for that share", async () => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const body = { name: "spot", code: "export default (x) => x", inputs: [1, 2, 3], replication: 2, quorum: 2, spotCheck: 0.000001, start: true };
    const task = (await t.call("POST", "/api/tasks", { token: creator, body })).json.task;
    expect(task).toMatchObject({ spotCheck: 0.000001 });
    const { token } = await t.volunteer(admin);
    const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max: 4, capabilities: { threads: 4 } } })).json;
    const posted = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, results: [1, 2, 3], cpuMs: 3 }] } });
    expect(posted.json.accepted).toBe(3);
    const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task;
    expect(view).toMatchObject({ status: "done", verification: { copiesReceived: 3, chunksReplicated: 0 } });
    // The live stream carries the same figures.
    const { ticket } = (await t.call("POST", "/api/tickets", { token: creator, body: {} })).json;
    const events = sseReader(await t.fetcher(`/api/tasks/${task.id}/events?ticket=${ticket}`, { method: "GET" }));
    const first = await events.next();
    expect(first?.event).toBe("progress");
    expect(JSON.parse(first!.data).verification).toEqual({ copiesReceived: 3, chunksReplicated: 0, disagreements: 0, volunteersBanned: 0 });
    await events.cancel();
    expect((await t.call("POST", "/api/tasks", { token: creator, body: { name: "d", code: "export default (x) => x", inputs: [1] } })).json.task.spotCheck).toBe(1);
    for (const spotCheck of [0, -0.5, 1.5, "0.1", null]) {
      const res = await t.call("POST", "/api/tasks", { token: creator, body: { ...body, spotCheck } });
      expect({ spotCheck, status: res.status }).toEqual({ spotCheck, status: 422 });
      expect(res.json.errors.map((e: { path: string }) => e.path).join(" ")).toMatch(/spotCheck/);
    }
    expect((await t.call("POST", `/api/tasks/${task.id}/clone`, { token: creator, body: { spotCheck: 0.25 } })).json.task.spotCheck).toBe(0.25);
  });

  it("votes on a probationer's block of a spot-checked task, and takes the trusted copy that decides it whole", async () => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const body = { name: "spot probation", code: "export default (x) => x", inputs: [4, 5, 6], replication: 2, quorum: 2, spotCheck: 0.000001, start: true };
    const task = (await t.call("POST", "/api/tasks", { token: creator, body })).json.task;
    // A fresh volunteer is on probation: its first copy goes to a vote, never accepted alone.
    const probationer = (await t.volunteer()).token;
    const first = (await t.call("POST", "/api/work/lease", { token: probationer, body: { max: 4, capabilities: { threads: 4 } } })).json.leases;
    expect(first.map((lease: { inputs: unknown[] }) => lease.inputs.length)).toEqual([3]);
    await t.call("POST", "/api/work/results", { token: probationer, body: { results: [{ leaseId: first[0].leaseId, results: [4, 5, 6], cpuMs: 3 }] } });
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task).toMatchObject({ status: "running", verification: { copiesReceived: 3, chunksReplicated: 3 } });
    // The admin's volunteer gets the copy, the first copy's block whole, and its agreeing copy decides it.
    const trusted = (await t.volunteer(admin)).token;
    const copy = (await t.call("POST", "/api/work/lease", { token: trusted, body: { max: 4, capabilities: { threads: 4 } } })).json.leases;
    expect(copy.map((lease: { firstIndex: number; inputs: unknown[] }) => [lease.firstIndex, lease.inputs.length])).toEqual([[0, 3]]);
    await t.call("POST", "/api/work/results", { token: trusted, body: { results: [{ leaseId: copy[0].leaseId, results: [4, 5, 6], cpuMs: 3 }] } });
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task).toMatchObject({ status: "done", verification: { copiesReceived: 6, chunksReplicated: 3, disagreements: 0 } });
  });

  it("refuses a quorum larger than the replication, storing nothing", async () => {
    const bad = await t.call("POST", "/api/tasks", { token: creator, body: { name: "bad", code: "export default (x) => x", inputs: [1], replication: 2, quorum: 3 } });
    expect(bad.status).toBe(422);
    expect(bad.json.errors.map((e: { path: string }) => e.path)).toContain("quorum");
  });
});
