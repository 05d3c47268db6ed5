// Accounts (issue 15). Before: a sign-in to an unknown email skipped PBKDF2 (~8 ms against
// ~30 ms), which told whether an account existed; ten wrong passwords from anyone, from any
// address, locked the real owner out for 15 minutes; and on a server install whoever first
// registered with ADMIN_EMAIL became the admin. Now the work is the same either way, limits
// count per address and per (account, address), and a server install's first admin must
// present a token only the operator sees.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { openTestDb, type TestDb, testBackends } from "@crowdcompute/db/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { adminBootstrapNotice, adminBootstrapToken } from "../src/lib/admin-bootstrap.ts";
import { sourceOf } from "../src/lib/sources.ts";
import { openTestApp, rowCounts, type TestApp, testEnv } from "./harness.ts";
import { spawnServer } from "./server-process.ts";

const apiRoot = fileURLToPath(new URL("..", import.meta.url));
const from = (ip: string) => ({ "x-test-client-ip": ip });

describe("client sources", () => {
  it("counts an IPv4 address as itself and an IPv6 address as its /64", () => {
    expect(sourceOf("203.0.113.7")).toBe("203.0.113.7");
    expect(sourceOf("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(sourceOf("2001:db8:1:2:3:4:5:6")).toBe("2001:db8:1:2::/64");
    expect(sourceOf("2001:DB8:1:2::99")).toBe("2001:db8:1:2::/64");
    expect(sourceOf("2001:0db8:0001:0002:ffff::1%eth0")).toBe("2001:db8:1:2::/64");
    expect(sourceOf("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(sourceOf("::1")).toBe("0:0:0:0::/64");
    expect(sourceOf("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
    expect(sourceOf("not an address")).toBe("not an address");
  });
});

describe.each(testBackends())("sign-in on %s", (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(
      backend,
      { limits: { loginPerAccount: 3, loginPerIp: 6, registerPerIp: 100, mintPerHour: 100, mintPerDay: 100, mintPerAccountPerDay: 100 } },
      { clientIp: (c) => c.req.header("x-test-client-ip") ?? null },
    );
    await t.register("owner@example.com", "the real password");
  });
  afterAll(async () => t?.dispose());
  afterEach(() => vi.restoreAllMocks());

  const login = (email: string, password: string, ip: string) => t.call("POST", "/api/auth/login", { body: { email, password }, headers: from(ip) });

  it("spends the same PBKDF2 work on an unknown email as on a wrong password", async () => {
    const derive = vi.spyOn(crypto.subtle, "deriveBits");
    const workFor = async (email: string, password: string, ip: string) => {
      derive.mockClear();
      const res = await login(email, password, ip);
      const calls = derive.mock.calls.map(([params]) => (params as { iterations?: number }).iterations);
      return { status: res.status, detail: res.json?.detail, calls };
    };
    const wrong = await workFor("owner@example.com", "not the password", "10.20.0.1");
    const unknown = await workFor("nobody@example.com", "not the password", "10.20.0.2");
    const right = await workFor("owner@example.com", "the real password", "10.20.0.3");
    expect(wrong).toEqual({ status: 401, detail: "wrong email or password", calls: [100_000] });
    expect(unknown).toEqual(wrong);
    expect(right.status).toBe(200);
    expect(right.calls).toEqual([100_000]);
  });

  it("stops guesses per address and per account from an address, and never locks the owner out", async () => {
    // One address guessing the owner's password is stopped after 3, even with the right one.
    for (let i = 0; i < 3; i++) expect((await login("owner@example.com", `wrong guess ${i}`, "10.1.0.1")).status).toBe(401);
    const blocked = await login("owner@example.com", "the real password", "10.1.0.1");
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    // Many addresses, each below its limit: 40 wrong passwords in all, and the owner signs in.
    for (let a = 0; a < 20; a++) {
      for (let i = 0; i < 2; i++) expect((await login("owner@example.com", `wrong guess ${a}.${i}`, `10.2.${a}.1`)).status).toBe(401);
    }
    expect((await login("owner@example.com", "the real password", "10.3.0.1")).status).toBe(200);
    // Fresh IPv6 addresses in one /64 are one source.
    for (let i = 0; i < 3; i++) expect((await login("owner@example.com", "a wrong guess", `2001:db8:7:7::${i + 1}`)).status).toBe(401);
    expect((await login("owner@example.com", "the real password", "2001:db8:7:7::ff")).status).toBe(429);
    expect((await login("owner@example.com", "the real password", "2001:db8:7:8::1")).status).toBe(200);
    // One address guessing across accounts is stopped by its own limit.
    for (let i = 0; i < 6; i++) expect((await login(`someone${i}@example.com`, "a wrong guess", "10.9.9.9")).status).toBe(401);
    expect((await login("owner@example.com", "the real password", "10.9.9.9")).status).toBe(429);
  });
});

describe.each(testBackends())("the first admin of a server install on %s", (backend) => {
  const secret = testEnv().jwtSecret;
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(backend, { embedded: false, adminEmail: "boss@example.com" });
  });
  afterAll(async () => t?.dispose());

  const register = (body: Record<string, unknown>) => t.call("POST", "/api/auth/register", { body: { password: "a long password", ...body } });

  it("does not make the first to register with ADMIN_EMAIL the admin, without the operator's token", async () => {
    // The attack: register first with ADMIN_EMAIL. An account, not an admin.
    const raced = await openTestApp(backend, { embedded: false, adminEmail: "raced@example.com" });
    try {
      const first = await raced.register("raced@example.com");
      expect(first.user.role).toBe("creator");
      expect((await raced.call("GET", "/api/admin/users", { token: first.token })).status).toBe(403);
    } finally {
      await raced.dispose();
    }
    expect((await register({ email: "first@example.com" })).json.user.role).toBe("creator");
    // Wrong tokens, or the right one for another email, change nothing.
    const notice = (await adminBootstrapNotice(t.db, { jwtSecret: secret, adminEmail: "boss@example.com", embedded: false }))!;
    const token = /"adminToken": "([A-Za-z0-9_-]{43})"/.exec(notice)![1]!;
    expect(token).toBe(await adminBootstrapToken(secret, "boss@example.com"));
    const before = await rowCounts(t);
    for (const attempt of [
      { email: "boss@example.com", adminToken: "guess" },
      { email: "boss@example.com", adminToken: await adminBootstrapToken("another secret, another secret, 0123", "boss@example.com") },
      { email: "other@example.com", adminToken: token },
    ]) {
      const res = await register(attempt);
      expect(res.status, JSON.stringify(attempt)).toBe(403);
      expect(await rowCounts(t)).toEqual(before);
    }
    const boss = await register({ email: "Boss@Example.com", adminToken: token });
    expect(boss.status).toBe(201);
    expect(boss.json.user).toMatchObject({ email: "boss@example.com", role: "admin", status: "active" });
    expect((await t.call("GET", "/api/admin/users", { token: boss.json.token })).status).toBe(200);
    // Spent: there is an admin now, and the notice is gone.
    expect(await adminBootstrapNotice(t.db, { jwtSecret: secret, adminEmail: "boss@example.com", embedded: false })).toBeNull();
    expect((await register({ email: "boss@example.com", adminToken: token })).status).toBe(409);
  });

  it("keeps an embedded install's first account its admin, and refuses a token there", async () => {
    const embedded = await openTestApp(backend, { embedded: true });
    try {
      const refused = await embedded.call("POST", "/api/auth/register", {
        body: { email: "me@example.com", password: "a long password", adminToken: await adminBootstrapToken(secret, "me@example.com") },
      });
      expect(refused.status).toBe(403);
      expect((await embedded.register("me@example.com")).user.role).toBe("admin");
      expect((await embedded.register("you@example.com")).user.role).toBe("creator");
      expect(await adminBootstrapNotice(embedded.db, { jwtSecret: secret, adminEmail: null, embedded: true })).toBeNull();
    } finally {
      await embedded.dispose();
    }
  });

  it("prints the same token from `npm run admin-token`", async () => {
    const child = spawn(process.execPath, ["scripts/admin-token.ts"], { cwd: apiRoot, env: { ...process.env, JWT_SECRET: secret, ADMIN_EMAIL: "boss@example.com", DATABASE_URL: "" } });
    let out = "";
    child.stdout.on("data", (data: Buffer) => (out += data.toString()));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(code).toBe(0);
    expect(out.trim()).toBe(await adminBootstrapToken(secret, "boss@example.com"));
  });
});

describe.each(testBackends().filter((b) => b === "postgres"))("the server's start log on %s", (backend) => {
  let testDb: TestDb;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(async () => testDb?.dispose());

  it("tells the operator the bootstrap token while the server has no admin, and not after", async () => {
    const env = { ...process.env, PORT: "0", DATABASE_URL: testDb.url!, JWT_SECRET: "start-log-secret-start-log-secret-0123", ADMIN_EMAIL: "operator@example.com" };
    // The notice comes before the "running at" line the spawn waits for.
    const start = () => spawnServer(["src/main.ts"], { cwd: apiRoot, env });
    const first = await start();
    const token = /"adminToken": "([A-Za-z0-9_-]{43})"/.exec(first.output())?.[1];
    expect(token, first.output()).toBeDefined();
    const url = /running at (\S+)/.exec(first.output())![1]!;
    const res = await fetch(`${url}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "operator@example.com", password: "a long password", adminToken: token }),
    });
    expect((await res.json()).user.role).toBe("admin");
    first.child.kill("SIGTERM");
    await new Promise((resolve) => first.child.once("exit", resolve));
    const second = await start();
    expect(second.output()).not.toContain("No admin yet");
    second.child.kill("SIGTERM");
    await new Promise((resolve) => second.child.once("exit", resolve));
  });
});
