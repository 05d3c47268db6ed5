import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, rowCounts, type TestApp } from "./harness.ts";

const code = "export default (x) => x";

describe.each(testBackends())("creator approval and suspension on %s", (backend) => {
  let t: TestApp;
  let admin: { token: string; user: { id: string; status: string } };
  beforeAll(async () => {
    t = await openTestApp(backend, { requireCreatorApproval: true });
    admin = await t.register("admin@example.com");
  });
  afterAll(async () => t?.dispose());

  it("makes new creators wait for an admin's approval when REQUIRE_CREATOR_APPROVAL is on", async () => {
    expect(admin.user.status).toBe("active");
    const newcomer = await t.register("newcomer@example.com");
    expect(newcomer.user.status).toBe("pending");
    const before = await rowCounts(t);
    const refused = await t.call("POST", "/api/tasks", { token: newcomer.token, body: { name: "early", code, inputs: [1] } });
    expect(refused.status).toBe(403);
    expect(refused.json.detail).toMatch(/approval/);
    expect((await t.call("POST", "/api/keys", { token: newcomer.token, body: {} })).status).toBe(403);
    expect(await rowCounts(t)).toEqual(before);
    const login = await t.call("POST", "/api/auth/login", { body: { email: "newcomer@example.com", password: "correct horse" } });
    expect(login.json.user.status).toBe("pending");

    const pending = await t.call("GET", "/api/admin/users?status=pending", { token: admin.token });
    expect(pending.json.items.map((u: { id: string }) => u.id)).toEqual([newcomer.user.id]);
    expect((await t.call("GET", "/api/admin/users", { token: newcomer.token })).status).toBe(403);
    expect((await t.call("POST", `/api/admin/users/${newcomer.user.id}/approve`, { token: newcomer.token })).status).toBe(403);
    expect((await t.call("POST", `/api/admin/users/${newcomer.user.id}/approve`, { token: admin.token })).status).toBe(200);
    expect((await t.call("GET", "/api/admin/users?status=pending", { token: admin.token })).json.items).toEqual([]);
    // The same token works now: the account is checked, not the token.
    expect((await t.call("POST", "/api/tasks", { token: newcomer.token, body: { name: "now", code, inputs: [1] } })).status).toBe(201);
  });

  it("suspends a creator: its tasks stop being served and it can do nothing, until lifted", async () => {
    const creator = await t.register("suspect@example.com");
    await t.call("POST", `/api/admin/users/${creator.user.id}/approve`, { token: admin.token });
    const { key } = (await t.call("POST", "/api/keys", { token: creator.token, body: {} })).json;
    const task = (await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "busy", code, inputs: [1, 2, 3], start: true } })).json.task;
    const suspended = await t.call("POST", `/api/admin/users/${creator.user.id}/suspend`, { token: admin.token });
    expect(suspended.status).toBe(200);
    expect(suspended.json.pausedTasks).toEqual([task.id]);
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: admin.token })).json.task.status).toBe("paused");
    const { token } = await t.volunteer();
    // Two threads: enough to be given all three chunks of a task not yet measured.
    const leaseBody = { max: 3, capabilities: { threads: 2 } };
    expect((await t.call("POST", "/api/work/lease", { token, body: leaseBody })).json.leases).toEqual([]);
    for (const credential of [creator.token, key]) {
      const res = await t.call("POST", `/api/tasks/${task.id}/resume`, { token: credential });
      expect(res.status).toBe(403);
      expect(res.json.detail).toMatch(/suspended/);
    }
    expect((await t.call("GET", "/api/admin/users?status=suspended", { token: admin.token })).json.items.map((u: { id: string }) => u.id)).toEqual([creator.user.id]);
    expect((await t.call("POST", `/api/admin/users/${admin.user.id}/suspend`, { token: admin.token })).status).toBe(409);
    expect((await t.call("POST", "/api/admin/users/not-a-uuid/suspend", { token: admin.token })).status).toBe(404);
    expect((await t.call("POST", `/api/admin/users/${creator.user.id}/explode`, { token: admin.token })).status).toBe(422);

    expect((await t.call("POST", `/api/admin/users/${creator.user.id}/unsuspend`, { token: admin.token })).status).toBe(200);
    expect((await t.call("POST", `/api/tasks/${task.id}/resume`, { token: creator.token })).json.task.status).toBe("running");
    const leases = (await t.call("POST", "/api/work/lease", { token, body: leaseBody })).json.leases;
    expect(chunksOfLeases(leases).map((c) => [c.taskId, c.index])).toEqual([0, 1, 2].map((index) => [task.id, index]));
  });
});
