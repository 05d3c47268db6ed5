// Minting volunteers is limited per network source (docs/architecture.md, "Minting
// volunteers"): the attack is one source minting in a loop, many at once.
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "../src/env.ts";
import { openTestApp, rowCounts, type TestApp } from "./harness.ts";

const proxy = "10.0.0.1";

describe.each(testBackends())("minting volunteers on %s", (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    // The runtime's address is named by a header here (the socket's on Node); 10.0.0.1 is a trusted proxy.
    t = await openTestApp(
      backend,
      { trustedProxies: [proxy], limits: { loginPerAccount: 10, loginPerIp: 50, registerPerIp: 30, mintPerHour: 5, mintPerDay: 8, mintPerAccountPerDay: 4 } },
      { clientIp: (c) => c.req.header("x-test-peer") ?? null },
    );
  });
  afterAll(async () => t?.dispose());

  const mint = (peer: string, options: { forwarded?: string; token?: string } = {}) =>
    t.call("POST", "/api/volunteers", {
      body: { name: "sybil" },
      headers: { "x-test-peer": peer, ...(options.forwarded ? { "x-forwarded-for": options.forwarded } : {}) },
      ...(options.token ? { token: options.token } : {}),
    });

  it("lets one source minting 50 at once have at most its hourly limit, the rest 429 and Retry-After, and nothing else created", async () => {
    const before = await rowCounts(t);
    const answers = await Promise.all(Array.from({ length: 50 }, () => mint("192.0.2.7")));
    const made = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    expect(made).toHaveLength(5);
    expect(new Set(made.map((a) => a.json.volunteer.id)).size).toBe(5);
    expect(refused.every((a) => a.status === 429 && a.type === "application/problem+json")).toBe(true);
    for (const a of refused) {
      const retryAfter = Number(a.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
    }
    expect(refused[0]!.json.detail).toContain("at most 5 in 1 hour");
    expect(await rowCounts(t)).toEqual({ ...before, volunteers: before.volunteers! + 5 });
  });

  it("counts the forwarded address only from a trusted proxy, and other sources still mint", async () => {
    // Another source, straight and through the proxy.
    expect((await mint("192.0.2.8")).status).toBe(201);
    expect((await mint(proxy, { forwarded: "198.51.100.9" })).status).toBe(201);
    // The spent source through the proxy is the same source.
    expect((await mint(proxy, { forwarded: "192.0.2.7" })).status).toBe(429);
    // A forwarded address from anyone but the proxy is not believed.
    expect((await mint("192.0.2.7", { forwarded: "203.0.113.1" })).status).toBe(429);
    expect((await mint("203.0.113.1")).status).toBe(201);
    // An IPv6 source is its /64.
    for (let i = 1; i <= 5; i++) expect((await mint(`2001:db8:1:2::${i}`)).status).toBe(201);
    expect((await mint("2001:db8:1:2:ffff::1")).status).toBe(429);
    expect((await mint("2001:db8:1:3::1")).status).toBe(201);
  });

  it("bounds a source's day, not only its hour", async () => {
    // A source spends its hour without a refusal (a refused key is also remembered by the
    // process until its window ends); then its hour ends: 3 more make the day's 8.
    for (let i = 0; i < 5; i++) expect((await mint("192.0.2.9")).status).toBe(201);
    await t.db.execute(sql`UPDATE rate_limits SET window_start = now() - interval '61 minutes' WHERE key = 'volunteers:hour:192.0.2.9'`);
    const answers = await Promise.all(Array.from({ length: 10 }, () => mint("192.0.2.9")));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(3);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(7);
    expect(refused.some((a) => a.json.detail.includes("at most 8 in 24 hours"))).toBe(true);
    expect(Math.max(...refused.map((a) => Number(a.headers.get("retry-after"))))).toBeGreaterThan(3600);
  });

  it("counts a signed-in caller's volunteers per account instead of per source", async () => {
    const first = await t.call("POST", "/api/auth/register", { body: { email: "lab@example.com", password: "a long password" }, headers: { "x-test-peer": "192.0.2.50" } });
    const second = await t.call("POST", "/api/auth/register", { body: { email: "other@example.com", password: "a long password" }, headers: { "x-test-peer": "192.0.2.50" } });
    // From the source that spent its own limit, the account still mints its 4.
    const answers = await Promise.all(Array.from({ length: 10 }, () => mint("192.0.2.7", { token: first.json.token })));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(4);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(6);
    expect((await mint("192.0.2.7", { token: second.json.token })).status).toBe(201);
    // Anonymous minting from that source is still refused.
    expect((await mint("192.0.2.7")).status).toBe(429);
  });
});

describe("the minting limits' environment", () => {
  it("defaults to 10 an hour and 20 a day per source, 50 a day per account, and reads each", () => {
    expect(parseEnv({}).limits).toMatchObject({ mintPerHour: 10, mintPerDay: 20, mintPerAccountPerDay: 50 });
    const raised = parseEnv({ VOLUNTEER_MINT_PER_HOUR: "1000", VOLUNTEER_MINT_PER_DAY: "5000", VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY: "70" });
    expect(raised.limits).toMatchObject({ mintPerHour: 1000, mintPerDay: 5000, mintPerAccountPerDay: 70 });
    expect(() => parseEnv({ VOLUNTEER_MINT_PER_HOUR: "0" })).toThrow(/VOLUNTEER_MINT_PER_HOUR/);
    // The old name is refused, not silently ignored.
    expect(() => parseEnv({ VOLUNTEER_LIMIT_PER_IP: "200" })).toThrow(/VOLUNTEER_LIMIT_PER_IP: renamed VOLUNTEER_MINT_PER_HOUR/);
  });
});
