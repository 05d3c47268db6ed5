import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

describe.each(testBackends())("retry-failed, clone and delete on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = (await t.register("fixer@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const task = (id: string) => t.call("GET", `/api/tasks/${id}`, { token: creator }).then((r) => r.json.task);
  // A new task gives 2 chunks a thread: ask with enough threads for `max`.
  const leaseBody = (max: number) => ({ max, capabilities: { threads: Math.ceil(max / 2) } });
  const only = async (id: string) => t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${id}`);

  it("reopens failed chunks of a finished task, which then completes with results", async () => {
    const created = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "flaky", code: "export default (x) => x", inputs: [1, 2], maxAttempts: 1, start: true } })).json.task;
    await only(created.id);
    const { token } = await t.volunteer();
    const leases = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(2) })).json.leases;
    expect(chunksOfLeases(leases).map((c) => c.index)).toEqual([0, 1]);
    const reported = await t.call("POST", "/api/work/results", {
      token,
      body: { results: [{ leaseId: leases[0].leaseId, results: [1], errors: [{ offset: 1, kind: "throw", message: "flake" }] }] },
    });
    expect(reported.json).toEqual({ accepted: 2, rejected: [] });
    expect(await task(created.id)).toMatchObject({ status: "done", counts: { done: 1, failed: 1 } });

    const retried = await t.call("POST", `/api/tasks/${created.id}/retry-failed`, { token: creator });
    expect(retried.json.task).toMatchObject({ status: "running", counts: { done: 1, failed: 0, pending: 1 } });
    expect(retried.json.reopened).toBe(1);
    const again = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(2) })).json.leases;
    expect(again.map((b: { firstIndex: number; inputs: unknown[] }) => [b.firstIndex, b.inputs])).toEqual([[1, [2]]]);
    expect((await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: again[0].leaseId, results: [2] }] } })).json).toEqual({ accepted: 1, rejected: [] });
    expect(await task(created.id)).toMatchObject({ status: "done", counts: { done: 2, failed: 0 } });
  });

  it("clones a task's inputs into a new draft with fixed code", async () => {
    const original = await t.call("POST", "/api/tasks", { token: creator, body: { name: "buggy", code: "export default (x) => x +", inputs: [1] } });
    expect(original.status).toBe(422);
    const source = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "buggy", code: "export default (x) => { throw new Error('bug') }", inputs: [10, 20, 30], timeoutMs: 5000 } }))
      .json.task;
    expect((await t.call("POST", `/api/tasks/${source.id}/clone`, { token: creator, body: { code: "export default (x) => x +" } })).status).toBe(422);
    const cloned = await t.call("POST", `/api/tasks/${source.id}/clone`, { token: creator, body: { code: "export default (x) => x * 2" } });
    expect(cloned.status).toBe(201);
    expect(cloned.json.task).toMatchObject({ name: "buggy", status: "draft", timeoutMs: 5000, counts: { total: 3, done: 0 } });
    expect(cloned.json.task.id).not.toBe(source.id);
    expect(cloned.json.task.codeSha256).not.toBe(source.codeSha256);

    await t.call("POST", `/api/tasks/${cloned.json.task.id}/start`, { token: creator });
    await only(cloned.json.task.id);
    const { token } = await t.volunteer();
    const leases = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(8) })).json.leases;
    expect(chunksOfLeases(leases).map((c) => c.input)).toEqual([10, 20, 30]);
    const code = await t.call("GET", `/api/tasks/${cloned.json.task.id}/code`, { token });
    expect(code.text).toBe("export default (x) => x * 2");
  });

  it("clones with a new name and options, copying what is not given, and checks them together", async () => {
    const source = (
      await t.call("POST", "/api/tasks", {
        token: creator,
        body: { name: "twice", description: "d", code: "export default (x) => x", inputs: [1, 2], replication: 3, quorum: 2, priority: 5, allowUsers: [crypto.randomUUID()] },
      })
    ).json.task;
    const clone = (body: object) => t.call("POST", `/api/tasks/${source.id}/clone`, { token: creator, body });
    // Quorum 3 with the source's replication 3 is fine; replication 1 under the source's quorum 2 is not.
    expect((await clone({ replication: 1 })).status).toBe(422);
    expect((await clone({ quorum: 4 })).status).toBe(422);
    expect((await clone({ name: "" })).status).toBe(422);
    const changed = (await clone({ name: "Copy of twice", replication: 1, quorum: 1, timeoutMs: 1500, allowUsers: null })).json.task;
    expect(changed).toMatchObject({
      name: "Copy of twice",
      description: "d",
      status: "draft",
      replication: 1,
      quorum: 1,
      timeoutMs: 1500,
      priority: 5,
      allowUsers: null,
      codeSha256: source.codeSha256,
      counts: { total: 2 },
    });
    // Nothing given: a copy of everything but the name's owner-facing state.
    expect((await clone({})).json.task).toMatchObject({ name: "twice", replication: 3, quorum: 2, allowUsers: source.allowUsers });
    const wasm = Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]).toString("base64");
    expect((await clone({ wasm })).json.task.wasmSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("deletes a task with everything of it, for its owner only", async () => {
    const doomed = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "doomed", code: "export default (x) => x", inputs: [1, 2], replication: 2, quorum: 2, start: true } })).json
      .task;
    await only(doomed.id);
    const { token } = await t.volunteer();
    const leases = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(1) })).json.leases;
    expect(chunksOfLeases(leases).map((c) => c.index)).toEqual([0]);
    expect((await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, results: [1] }] } })).json).toEqual({ accepted: 1, rejected: [] });
    const rowsOf = async (table: string) => {
      const out: unknown = await t.db.execute(sql`SELECT count(*)::int AS n FROM ${sql.identifier(table)} WHERE task_id = ${doomed.id}`);
      return (Array.isArray(out) ? out : (out as { rows: { n: number }[] }).rows)[0].n as number;
    };
    expect(await rowsOf("votes")).toBe(1);
    const stranger = (await t.register("stranger@example.com")).token;
    expect((await t.call("DELETE", `/api/tasks/${doomed.id}`, { token: stranger })).status).toBe(403);
    expect((await t.call("DELETE", `/api/tasks/${doomed.id}`, { token: creator })).status).toBe(204);
    expect((await t.call("GET", `/api/tasks/${doomed.id}`, { token: creator })).status).toBe(404);
    for (const table of ["results", "votes", "leases", "chunk_state", "task_counters", "chunk_inputs", "stripes"]) {
      expect(await rowsOf(table), table).toBe(0);
    }
    expect((await t.call("DELETE", `/api/tasks/${doomed.id}`, { token: creator })).status).toBe(404);
    // The late result of a deleted task is refused, not a server error.
    const late = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, results: [1] }] } });
    expect(late.status).toBe(200);
    expect(late.json).toEqual({ accepted: 0, rejected: [{ leaseId: leases[0].leaseId, offset: 0, count: 1, reason: "task-unknown" }] });
  });
});
