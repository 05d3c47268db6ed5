import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

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
    }
    const lines = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator })).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([{ index: 0, input: 1, status: "done", result: { a: 1, b: [true, null] } }]);
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

  it("refuses a quorum larger than the replication, storing nothing", async () => {
    const bad = await t.call("POST", "/api/tasks", { token: creator, body: { name: "bad", code: "export default (x) => x", inputs: [1], replication: 2, quorum: 3 } });
    expect(bad.status).toBe(422);
    expect(bad.json.errors.map((e: { path: string }) => e.path)).toContain("quorum");
  });
});
