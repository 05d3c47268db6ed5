// Issue 25, items 5 and 7, by their attacks: the login limit was checked before the password
// and counted after, so 300 wrong guesses sent at once from one source were all checked; and
// on an embedded install with ADMIN_EMAIL set, registering that address made an admin even
// after one existed. Each guess is now counted, atomically, before its password is checked,
// and no registration makes an admin once there is one, in any mode.
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "../src/env.ts";
import { adminBootstrapToken } from "../src/lib/admin-bootstrap.ts";
import { openTestApp, type TestApp, testEnv } from "./harness.ts";

// Every request reaches the app from this proxy, which forwards the client's address.
const proxy = "10.0.0.1";
const from = (source: string) => ({ "x-forwarded-for": source });

const loginAt = (t: TestApp, email: string, password: string, source: string) => t.call("POST", "/api/auth/login", { body: { email, password }, headers: from(source) });
const count = (statuses: number[]) => {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
};

describe.each(testBackends())("sign-in guesses sent at once on %s", (backend) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await openTestApp(backend, { trustedProxies: [proxy] }, { clientIp: () => proxy });
    await t.register("victim@example.com", "the right password");
    await t.register("admin-target@example.com", "the admin's password");
  });
  afterAll(async () => t?.dispose());

  const login = (email: string, password: string, source: string) => loginAt(t, email, password, source);

  it("checks only the first 10 of 300 parallel wrong guesses from one source; the owner still signs in from elsewhere", async () => {
    const source = "198.51.100.7";
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => login("victim@example.com", `wrong guess ${i}`, source)));
    // At most 10 checked: a guess counted within the account's 10 may be past the source's 50 (the two counts race).
    const got = count(answers.map((a) => a.status));
    expect(got[401]).toBeGreaterThan(0);
    expect(got[401]).toBeLessThanOrEqual(10);
    expect(got[401]! + got[429]!).toBe(300);
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.type).toBe("application/problem+json");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    // Past the limit not even the right password is checked from that source…
    expect((await login("victim@example.com", "the right password", source)).status).toBe(429);
    // …but the owner, elsewhere, is not locked out.
    expect((await login("victim@example.com", "the right password", "203.0.113.20")).status).toBe(200);
  });

  it("checks at most 10 guesses per source of 400 against one account from 4 sources", async () => {
    const sources = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"];
    const answers = await Promise.all(sources.flatMap((source) => Array.from({ length: 100 }, (_, i) => login("admin-target@example.com", `a wrong guess ${i}`, source))));
    for (let i = 0; i < sources.length; i++) {
      const got = count(answers.slice(i * 100, (i + 1) * 100).map((a) => a.status));
      expect(got[401]).toBeGreaterThan(0);
      expect(got[401]).toBeLessThanOrEqual(10);
      expect(got[401]! + got[429]!).toBe(100);
    }
  });

  it("bounds one source over many accounts too (50), counting unknown emails", async () => {
    const source = "198.51.100.99";
    const answers = await Promise.all(Array.from({ length: 120 }, (_, i) => login(`nobody-${i}@example.com`, "any password at all", source)));
    expect(count(answers.map((a) => a.status))).toEqual({ 401: 50, 429: 70 });
  });

  it("gives back the count of a right password: only failures use up the limit", async () => {
    const source = "198.51.100.42";
    for (let i = 0; i < 9; i++) expect((await login("victim@example.com", "a wrong guess", source)).status).toBe(401);
    // Signing in, even often, uses none of the 10.
    for (let i = 0; i < 3; i++) expect((await login("victim@example.com", "the right password", source)).status).toBe(200);
    expect((await login("victim@example.com", "a wrong guess", source)).status).toBe(401);
    expect((await login("victim@example.com", "a wrong guess", source)).status).toBe(429);
  });
});

describe.each(testBackends())("the network source on %s", (backend) => {
  it("believes X-Forwarded-For only from a trusted proxy: a client that forges it is still one source", async () => {
    // The client reaches the app directly (its socket is its own address), and sends a new
    // forwarded address with every guess.
    const t = await openTestApp(backend, { trustedProxies: [proxy] }, { clientIp: () => "198.51.100.200" });
    try {
      await t.register("forged@example.com", "the right password");
      const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => loginAt(t, "forged@example.com", `a wrong guess ${i}`, `192.0.2.${i}`)));
      const got = count(answers.map((a) => a.status));
      expect(got[401]).toBeLessThanOrEqual(10);
      expect(got[401]! + got[429]!).toBe(60);
    } finally {
      await t.dispose();
    }
  });

  it("reads TRUSTED_PROXIES and the bounds from the environment", () => {
    const env = parseEnv({ TRUSTED_PROXIES: " 127.0.0.1, ::1 ,", BODY_BYTES_IN_FLIGHT: String(32 * 1024 * 1024), STREAMS_PER_CREATOR: "8" });
    expect(env.trustedProxies).toEqual(["127.0.0.1", "::1"]);
    expect(env.bounds).toMatchObject({ bodyBytesInFlight: 32 * 1024 * 1024, bodyBytesPerSource: 16 * 1024 * 1024, streamsPerCreator: 8, uploadsPerCreator: 4 });
    expect(parseEnv({}).trustedProxies).toEqual([]);
    expect(() => parseEnv({ STREAMS_PER_CREATOR: "0" })).toThrow(/STREAMS_PER_CREATOR/);
  });
});

describe.each(testBackends())("registrations and the admin on %s", (backend) => {
  const admins = async (t: TestApp) => {
    const rows = await t.db.execute(sql`SELECT email FROM users WHERE role = 'admin' ORDER BY email`);
    return ((Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows) as { email: string }[]).map((r) => r.email);
  };

  it("an embedded install with ADMIN_EMAIL: that address makes no admin once one exists", async () => {
    const t = await openTestApp(backend, { embedded: true, adminEmail: "boss@example.com" });
    try {
      // The first account of an embedded install is its admin.
      expect((await t.register("first@example.com")).user.role).toBe("admin");
      // The attack: register ADMIN_EMAIL afterwards, with no token. An account, not an admin.
      const late = await t.register("boss@example.com");
      expect(late.user.role).toBe("creator");
      expect((await t.call("GET", "/api/admin/users", { token: late.token })).status).toBe(403);
      expect(await admins(t)).toEqual(["first@example.com"]);
    } finally {
      await t.dispose();
    }
  });

  it("twenty registrations at once on a fresh embedded install (ADMIN_EMAIL among them) make exactly one admin", async () => {
    const t = await openTestApp(backend, { embedded: true, adminEmail: "boss@example.com" });
    try {
      const emails = ["boss@example.com", ...Array.from({ length: 19 }, (_, i) => `racer-${i}@example.com`)];
      const made = await Promise.all(emails.map((email) => t.register(email)));
      expect(made.filter((m) => m.user.role === "admin")).toHaveLength(1);
      expect(await admins(t)).toHaveLength(1);
      // And ADMIN_EMAIL, retried, is no second admin (its account exists: 409).
      expect((await t.call("POST", "/api/auth/register", { body: { email: "boss@example.com", password: "correct horse" } })).status).toBe(409);
    } finally {
      await t.dispose();
    }
  });

  it("a server install: the operator's token makes the admin once, and nothing makes another", async () => {
    const t = await openTestApp(backend, { embedded: false, adminEmail: "boss@example.com" });
    try {
      const token = await adminBootstrapToken(testEnv().jwtSecret, "boss@example.com");
      const boss = await t.call("POST", "/api/auth/register", { body: { email: "boss@example.com", password: "correct horse", adminToken: token } });
      expect(boss.json.user.role).toBe("admin");
      expect((await t.register("someone@example.com")).user.role).toBe("creator");
      expect(await admins(t)).toEqual(["boss@example.com"]);
    } finally {
      await t.dispose();
    }
  });
});
