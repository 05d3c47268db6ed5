// Tokens do not outlive what minted them (issue 15): a volunteer token minted with an API key
// stops working once the key is revoked; one that belongs to a creator stops leasing, and its
// results stop being trusted as the owner's, once an admin suspends that creator. Before, both
// kept leasing, and the suspended owner's volunteer still carried a quorum alone.
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/create-app.ts";
import { createMinterCache } from "../src/lib/minters.ts";
import { apiClient, openTestApp, type TestApp, testEnv } from "./harness.ts";

const code = "export default (x) => x";

/** Polls until `probe` is true: another process sees a change once its cache entry expires. */
async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(testBackends())("tokens and what minted them on %s", (backend) => {
  let t: TestApp;
  let admin: { token: string };
  let creator: { token: string; user: { id: string } };
  /** Another API process on the same database, whose cache never expires on its own. */
  let stale: ReturnType<typeof apiClient>;
  /** Another API process on the same database, with a short cache. */
  let other: ReturnType<typeof apiClient>;

  const lease = (client: ReturnType<typeof apiClient>, token: string) => client.call("POST", "/api/work/lease", { token, body: { max: 1 } });
  const mintKey = async () => (await t.call("POST", "/api/keys", { token: creator.token, body: { name: "script" } })).json as { key: string; apiKey: { id: string } };

  beforeAll(async () => {
    t = await openTestApp(backend);
    admin = await t.register("admin@example.com");
    creator = await t.register("creator@example.com");
    const staleApp = createApp({ db: t.db, env: testEnv(), minters: createMinterCache(3_600_000) });
    stale = apiClient(async (path, init) => staleApp.request(path, init));
    const otherApp = createApp({ db: t.db, env: testEnv(), minters: createMinterCache(200) });
    other = apiClient(async (path, init) => otherApp.request(path, init));
    await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "work", code, inputs: Array.from({ length: 50 }, (_, i) => i), start: true } });
  });
  afterAll(async () => t?.dispose());

  it("ends a volunteer token minted with an API key when the key is revoked: at once here, within the cache's TTL elsewhere", async () => {
    const { key, apiKey } = await mintKey();
    const minted = await t.volunteer(key);
    const bySession = await t.volunteer(creator.token);
    const anonymous = await t.volunteer();
    for (const client of [t, other]) expect((await lease(client, minted.token)).status).toBe(200);

    expect((await t.call("DELETE", `/api/keys/${apiKey.id}`, { token: creator.token })).status).toBe(204);
    const refused = await lease(t, minted.token);
    expect(refused.status).toBe(401);
    expect(refused.json.detail).toMatch(/minted with an API key that has since been revoked/);
    for (const route of [
      ["GET", "/api/volunteers/me"],
      ["POST", "/api/work/heartbeat"],
      ["POST", "/api/tickets"],
    ] as const) {
      const res = await t.call(route[0], route[1], { token: minted.token, ...(route[0] === "POST" ? { body: route[1].endsWith("heartbeat") ? { leaseIds: ["x"] } : {} } : {}) });
      expect(res.status, route.join(" ")).toBe(401);
    }
    await until("the other process to see the revocation", async () => (await lease(other, minted.token)).status === 401);
    // The key's revocation touches nothing it did not mint.
    expect((await lease(t, bySession.token)).status).toBe(200);
    expect((await lease(t, anonymous.token)).status).toBe(200);
  });

  it("ends a stream ticket issued to an API key with the key", async () => {
    const { key, apiKey } = await mintKey();
    const task = (await t.call("POST", "/api/tasks", { token: key, body: { name: "watched", code, inputs: [1] } })).json.task.id as string;
    const { ticket } = (await t.call("POST", "/api/tickets", { token: key, body: {} })).json;
    await t.call("DELETE", `/api/keys/${apiKey.id}`, { token: creator.token });
    const res = await t.call("GET", `/api/tasks/${task}/events?ticket=${encodeURIComponent(ticket)}`);
    expect(res.status).toBe(401);
    expect(res.json.detail).toMatch(/revoked/);
  });

  it("stops a suspended creator's volunteers from leasing until the suspension is lifted", async () => {
    const { key } = await mintKey();
    const withKey = await t.volunteer(key);
    const withSession = await t.volunteer(creator.token);
    const anonymous = await t.volunteer();
    for (const token of [withKey.token, withSession.token]) expect((await lease(other, token)).status).toBe(200);

    expect((await t.call("POST", `/api/admin/users/${creator.user.id}/suspend`, { token: admin.token })).status).toBe(200);
    for (const token of [withKey.token, withSession.token]) {
      const res = await lease(t, token);
      expect(res.status).toBe(403);
      expect(res.json.detail).toMatch(/belongs to is suspended/);
    }
    await until("the other process to see the suspension", async () => (await lease(other, withSession.token)).status === 403);
    expect((await lease(t, anonymous.token)).status).toBe(200);

    expect((await t.call("POST", `/api/admin/users/${creator.user.id}/unsuspend`, { token: admin.token })).status).toBe(200);
    for (const token of [withKey.token, withSession.token]) expect((await lease(t, token)).status).toBe(200);
  });

  it("does not trust a suspended owner's volunteer, even through a process that has not heard of the suspension", async () => {
    const owner = await t.register("owner@example.com");
    const volunteer = await t.volunteer(owner.token);
    const newTask = async () => {
      await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
      return (await t.call("POST", "/api/tasks", { token: owner.token, body: { name: "replicated", code, inputs: [7], replication: 2, quorum: 1, start: true } })).json.task.id as string;
    };
    const reportOnce = async (client: ReturnType<typeof apiClient>) => {
      const leased = await lease(client, volunteer.token);
      expect(leased.status).toBe(200);
      const [block] = leased.json.leases as { leaseId: string; inputs: unknown[] }[];
      const res = await client.call("POST", "/api/work/results", { token: volunteer.token, body: { results: [{ leaseId: block!.leaseId, results: block!.inputs }] } });
      expect(res.status).toBe(200);
      expect(res.json.accepted).toBe(1);
    };
    const done = async (id: string) => (await t.call("GET", `/api/tasks/${id}`, { token: admin.token })).json.task.counts.done as number;

    // The owner's own volunteer is trusted from the start: its one copy makes the quorum of 1.
    const control = await newTask();
    await reportOnce(stale);
    expect(await done(control)).toBe(1);

    // Suspended (its tasks paused, then resumed by an admin): a process whose cache still says
    // the owner is active lets the volunteer report, but its copy is no longer trusted, so a
    // quorum of 1 waits for a trusted copy.
    const task = await newTask();
    await t.call("POST", `/api/admin/users/${owner.user.id}/suspend`, { token: admin.token });
    expect((await t.call("POST", `/api/tasks/${task}/resume`, { token: admin.token })).status).toBe(200);
    await reportOnce(stale);
    expect(await done(task)).toBe(0);
    const trusted = (await t.db.execute(sql`SELECT trusted FROM votes WHERE task_id = ${task}`)) as unknown as { rows?: { trusted: boolean }[] } & { trusted: boolean }[];
    expect((trusted.rows ?? trusted).map((row) => row.trusted)).toEqual([false]);
  });
});
