import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

const code = "export default (x) => x * 2";

describe.each(testBackends())("API keys on %s", (backend) => {
  let t: TestApp;
  let creator: { token: string; user: { id: string } };
  let other: { token: string; user: { id: string } };

  beforeAll(async () => {
    t = await openTestApp(backend);
    await t.register("admin@example.com");
    creator = await t.register("keys@example.com");
    other = await t.register("other-keys@example.com");
  });
  afterAll(async () => t?.dispose());

  it("mints a key shown once, stores only its hash, and lets it act as its creator", async () => {
    const minted = await t.call("POST", "/api/keys", { token: creator.token, body: { name: "ci script" } });
    expect(minted.status).toBe(201);
    const key: string = minted.json.key;
    expect(key).toMatch(/^cc_[A-Za-z0-9_-]{43}$/);
    expect(minted.json.apiKey).toMatchObject({ name: "ci script", prefix: key.slice(0, 11), lastUsedAt: null, revokedAt: null });

    const stored = await t.db.execute(sql`SELECT key_hash FROM api_keys`);
    const text = JSON.stringify(stored);
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(3));

    const listed = await t.call("GET", "/api/keys", { token: creator.token });
    expect(listed.status).toBe(200);
    expect(listed.json.items).toHaveLength(1);
    expect(listed.text).not.toContain(key);

    const task = await t.call("POST", "/api/tasks", { token: key, body: { name: "via key", code, inputs: [1, 2] } });
    expect(task.status).toBe(201);
    const mine = await t.call("GET", "/api/tasks", { token: creator.token });
    expect(mine.json.items.map((x: { id: string }) => x.id)).toContain(task.json.task.id);
    expect((await t.call("GET", `/api/tasks/${task.json.task.id}`, { token: key })).status).toBe(200);
    expect((await t.call("GET", `/api/tasks/${task.json.task.id}`, { token: other.token })).status).toBe(403);

    // A volunteer made with a key belongs to the key's creator.
    const volunteer = await t.call("POST", "/api/volunteers", { token: key, body: {} });
    expect(volunteer.json.volunteer.userId).toBe(creator.user.id);

    const used = await t.call("GET", "/api/keys", { token: creator.token });
    expect(used.json.items[0].lastUsedAt).not.toBeNull();
  });

  it("is scoped to creator actions: no key management with a key, no volunteer work", async () => {
    const { key } = (await t.call("POST", "/api/keys", { token: creator.token, body: {} })).json;
    expect((await t.call("POST", "/api/keys", { token: key, body: {} })).status).toBe(403);
    expect((await t.call("GET", "/api/keys", { token: key })).status).toBe(403);
    expect((await t.call("POST", "/api/work/lease", { token: key, body: { max: 1 } })).status).toBe(403);
  });

  it("stops working once revoked; revoking is the owner's and happens once", async () => {
    const minted = (await t.call("POST", "/api/keys", { token: creator.token, body: { name: "short-lived" } })).json;
    const id: string = minted.apiKey.id;
    expect((await t.call("GET", "/api/tasks", { token: minted.key })).status).toBe(200);
    expect((await t.call("DELETE", `/api/keys/${id}`, { token: other.token })).status).toBe(404);
    expect((await t.call("DELETE", `/api/keys/${id}`, { token: minted.key })).status).toBe(403);
    expect((await t.call("DELETE", `/api/keys/${id}`, { token: creator.token })).status).toBe(204);
    const after = await t.call("GET", "/api/tasks", { token: minted.key });
    expect(after.status).toBe(401);
    expect(after.type).toBe("application/problem+json");
    expect((await t.call("DELETE", `/api/keys/${id}`, { token: creator.token })).status).toBe(404);
    expect((await t.call("DELETE", "/api/keys/not-a-uuid", { token: creator.token })).status).toBe(404);
    const listed = (await t.call("GET", "/api/keys", { token: creator.token })).json.items;
    expect(listed.find((k: { id: string }) => k.id === id).revokedAt).not.toBeNull();
  });

  it("refuses unknown, malformed and foreign keys, and bad bodies, writing nothing", async () => {
    const count = async () => JSON.stringify(await t.db.execute(sql`SELECT count(*)::int AS n FROM api_keys`));
    const before = await count();
    const fake = `cc_${"A".repeat(43)}`;
    expect((await t.call("GET", "/api/tasks", { token: fake })).status).toBe(401);
    expect((await t.call("GET", "/api/tasks", { token: "cc_short" })).status).toBe(401);
    expect((await t.call("GET", "/api/tasks", { token: "cc_'; DROP TABLE users; --" })).status).toBe(401);
    expect((await t.call("POST", "/api/keys", { token: creator.token, body: { name: "x", role: "admin" } })).status).toBe(422);
    expect((await t.call("POST", "/api/keys", { token: creator.token, body: { name: "" } })).status).toBe(422);
    expect((await t.call("POST", "/api/keys", { token: creator.token, body: { name: "y".repeat(101) } })).status).toBe(422);
    expect((await t.call("POST", "/api/keys", { body: {} })).status).toBe(401);
    const { token: volunteerToken } = await t.volunteer();
    expect((await t.call("POST", "/api/keys", { token: volunteerToken, body: {} })).status).toBe(403);
    expect(await count()).toBe(before);
  });

  it("gives an admin's key creator powers only", async () => {
    const admin = await t.call("POST", "/api/auth/login", { body: { email: "admin@example.com", password: "correct horse" } });
    expect(admin.json.user.role).toBe("admin");
    const { key } = (await t.call("POST", "/api/keys", { token: admin.json.token, body: {} })).json;
    const othersTask = await t.call("POST", "/api/tasks", { token: other.token, body: { name: "private", code, inputs: [1] } });
    expect((await t.call("GET", `/api/tasks/${othersTask.json.task.id}`, { token: admin.json.token })).status).toBe(200);
    expect((await t.call("GET", `/api/tasks/${othersTask.json.task.id}`, { token: key })).status).toBe(403);
  });
});
