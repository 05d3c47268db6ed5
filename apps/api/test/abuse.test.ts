// The abuse suite (issue 6): bad and expired tokens, other people's things, wrong
// roles, malformed JSON, wrong types, oversize bodies, hostile strings, replayed and forged
// lease ids, and the per-account / per-address limits. Every response is 2xx or 4xx, never
// 5xx, and no rejected request changes the number of rows in any table.
import { testBackends } from "@crowdcompute/db/testing";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultBodyLimit } from "../src/lib/limits.ts";
import { type CallOptions, type CallResult, openTestApp, rowCounts, type TestApp, testEnv } from "./harness.ts";

const code = "export default (x) => x";
const secret = testEnv().jwtSecret;
const missingId = "0192aaaa-0000-7000-8000-000000000000";

/** Strings that have broken servers before. */
const hostileStrings = [
  "'; DROP TABLE users; --",
  '" OR 1=1 --',
  "a\u0000b",
  "\u0000",
  "𝕏".repeat(5_000),
  "\uD800", // a lone surrogate
  "‮evil",
  "../../../../etc/passwd",
  "%00%27",
  "<script>alert(1)</script>",
  "__proto__",
  "",
  " ".repeat(300),
];
/** Values of every JSON type, odd numbers included. */
const hostileValues: unknown[] = [
  ...hostileStrings,
  null,
  true,
  0,
  -1,
  1e308,
  -0,
  2 ** 63,
  0.5,
  [],
  [null],
  {},
  { __proto__: { admin: true } },
  JSON.parse('{"__proto__": {"role": "admin"}, "constructor": {"prototype": {"polluted": true}}}'),
];
const malformedBodies = [
  "",
  "{",
  "}",
  "[]",
  "null",
  '"just a string"',
  '{"a":1}{',
  "{'single': 'quotes'}",
  "\uFEFF{}",
  '{"a": NaN}',
  '{"a": Infinity}',
  '{"a": 1e999999}',
  `${"[".repeat(5_000)}${"]".repeat(5_000)}`,
  '{"__proto__": {"isAdmin": true}}',
  '{"constructor": {"prototype": {"isAdmin": true}}}',
];

const volunteerPath = (path: string) => path.startsWith("/api/work") || path === "/api/volunteers/me";

/** A request body for each operation that passes validation, to mutate one field at a time. */
const validBodies: Record<string, Record<string, unknown>> = {
  "POST /api/auth/register": { email: "fuzz@example.com", password: "long enough" },
  "POST /api/auth/login": { email: "owner@example.com", password: "correct horse" },
  "POST /api/volunteers": { name: "fuzzer" },
  "PATCH /api/volunteers/me": { name: "fuzzer" },
  "PATCH /api/auth/me": { name: "fuzz" },
  "POST /api/tasks": { name: "fuzz", code, inputs: [1, 2] },
  "POST /api/tasks/{id}/clone": {},
  "POST /api/work/lease": { max: 1 },
  "POST /api/work/results": { results: [{ leaseId: "x", results: [1] }] },
  "POST /api/work/heartbeat": { leaseIds: ["x"] },
  "POST /api/keys": { name: "fuzz" },
  "POST /api/tickets": {},
};

describe.each(testBackends())("abuse on %s", (backend) => {
  let t: TestApp;
  let owner: { token: string; user: { id: string } };
  let stranger: { token: string };
  let admin: { token: string };
  let volunteer: { token: string; volunteer: { id: string } };
  let ownersTask: string;
  let counts: Record<string, number>;
  const seen = { total: 0, server: [] as string[] };

  /** Calls the API and checks the bars: no 5xx, and a rejected request changes no row count. */
  async function attempt(method: string, path: string, options: CallOptions = {}): Promise<CallResult> {
    const res = await t.call(method, path, options);
    seen.total++;
    const what = `${method} ${path.slice(0, 120)} ${options.raw !== undefined ? String(options.raw).slice(0, 80) : JSON.stringify(options.body)?.slice(0, 80)}`;
    if (res.status >= 500) seen.server.push(`${res.status} ${what}: ${res.text.slice(0, 200)}`);
    expect(res.status, what).toBeLessThan(500);
    const after = await rowCounts(t);
    if (res.status >= 400) {
      expect(after, `rows changed by a rejected ${what}`).toEqual(counts);
      expect(res.type, what).toBe("application/problem+json");
    }
    counts = after;
    return res;
  }

  beforeAll(async () => {
    t = await openTestApp(backend);
    admin = await t.register("admin@example.com");
    owner = await t.register("owner@example.com");
    stranger = await t.register("stranger@example.com");
    volunteer = await t.volunteer();
    ownersTask = (await t.call("POST", "/api/tasks", { token: owner.token, body: { name: "mine", code, inputs: [1, 2, 3] } })).json.task.id;
    counts = await rowCounts(t);
  });
  afterAll(async () => t?.dispose());

  it("refuses missing, malformed, forged, expired and foreign-secret tokens with 401", async () => {
    const key = new TextEncoder().encode(secret);
    const expired = await new SignJWT({ role: "creator" }).setProtectedHeader({ alg: "HS256" }).setSubject(owner.user.id).setIssuedAt(1_600_000_000).setExpirationTime(1_600_000_060).sign(key);
    const otherSecret = await new SignJWT({ role: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(owner.user.id)
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-another-secret-another-secret"));
    const algNone = `${btoa(JSON.stringify({ alg: "none" }))}.${btoa(JSON.stringify({ sub: owner.user.id, role: "admin" }))}.`;
    const noRole = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(owner.user.id).setExpirationTime("1h").sign(key);
    const badTokens = ["garbage", "a.b.c", expired, otherSecret, algNone, noRole, "x".repeat(10_000), `cc_${"A".repeat(43)}`, "cc_"];
    for (const token of badTokens) {
      for (const [method, path] of [
        ["GET", "/api/tasks"],
        ["POST", "/api/work/lease"],
        ["GET", `/api/tasks/${ownersTask}`],
        ["POST", "/api/keys"],
      ] as const) {
        const res = await attempt(method, path, { token, ...(method === "POST" ? { body: {} } : {}) });
        expect(res.status, `${method} ${path} with ${token.slice(0, 20)}`).toBe(401);
      }
    }
    expect((await attempt("GET", "/api/tasks", { token: expired })).json.detail).toMatch(/expired/);
    for (const header of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", `Token ${owner.token}`]) {
      expect((await attempt("GET", "/api/tasks", { headers: { authorization: header } })).status).toBe(401);
    }
  });

  it("keeps creators out of each other's tasks and roles out of each other's routes", async () => {
    for (const path of [`/api/tasks/${ownersTask}`, `/api/tasks/${ownersTask}/results`, `/api/tasks/${ownersTask}/events`]) {
      expect((await attempt("GET", path, { token: stranger.token })).status).toBe(403);
    }
    for (const action of ["start", "pause", "resume", "cancel", "retry-failed"]) {
      expect((await attempt("POST", `/api/tasks/${ownersTask}/${action}`, { token: stranger.token })).status).toBe(403);
    }
    expect((await attempt("DELETE", `/api/tasks/${ownersTask}`, { token: stranger.token })).status).toBe(403);
    expect((await attempt("POST", `/api/tasks/${ownersTask}/clone`, { token: stranger.token, body: {} })).status).toBe(403);
    expect((await attempt("POST", `/api/tasks/${ownersTask}/inputs?offset=3`, { token: stranger.token, raw: "1\n" })).status).toBe(403);
    // Wrong roles: volunteers cannot create, creators cannot lease.
    expect((await attempt("POST", "/api/tasks", { token: volunteer.token, body: { name: "x", code, inputs: [1] } })).status).toBe(403);
    expect((await attempt("GET", "/api/tasks", { token: volunteer.token })).status).toBe(403);
    expect((await attempt("POST", "/api/keys", { token: volunteer.token, body: {} })).status).toBe(403);
    expect((await attempt("POST", "/api/work/lease", { token: owner.token, body: { max: 1 } })).status).toBe(403);
    expect((await attempt("POST", "/api/work/results", { token: admin.token, body: { results: [{ leaseId: "x", results: [1] }] } })).status).toBe(403);
    // The owner (and an admin) still can.
    expect((await attempt("GET", `/api/tasks/${ownersTask}`, { token: owner.token })).status).toBe(200);
    expect((await attempt("GET", `/api/tasks/${ownersTask}`, { token: admin.token })).status).toBe(200);
  });

  it("answers malformed JSON and wrong content with 4xx on every body route", async () => {
    for (const operation of Object.keys(validBodies)) {
      const [method, template] = operation.split(" ") as [string, string];
      const path = template.replace("{id}", ownersTask);
      const token = volunteerPath(path) ? volunteer.token : owner.token;
      for (const raw of malformedBodies) await attempt(method, path, { token, raw });
      await attempt(method, path, { token, raw: new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0xc3, 0x28]) as unknown as string, headers: { "content-type": "application/json" } });
      await attempt(method, path, { token, raw: "name=x&code=y", headers: { "content-type": "application/x-www-form-urlencoded" } });
      await attempt(method, path, { token, raw: "{}", headers: { "content-type": "text/plain" } });
      await attempt(method, path, { token, raw: '--x\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\n{}\r\n--x--\r\n', headers: { "content-type": "multipart/form-data; boundary=x" } });
      await attempt(method, path, { token, raw: "garbage", headers: { "content-type": "multipart/form-data" } });
    }
  });

  it("answers wrong types, hostile strings and prototype keys in every field with 2xx or 4xx", async () => {
    for (const [operation, valid] of Object.entries(validBodies)) {
      const [method, template] = operation.split(" ") as [string, string];
      const path = template.replace("{id}", ownersTask);
      const token = volunteerPath(path) ? volunteer.token : owner.token;
      const fields = [...Object.keys(valid), "surprise", "__proto__", "constructor"];
      for (const field of fields) {
        for (const value of hostileValues) {
          // JSON.stringify drops a `__proto__` own key set by assignment: write the text by hand.
          const raw = `{${[
            ...Object.entries(valid)
              .filter(([k]) => k !== field)
              .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`),
            `${JSON.stringify(field)}:${JSON.stringify(value)}`,
          ].join(",")}}`;
          const res = await attempt(method, path, { token, raw });
          if (field === "surprise") expect(res.status, `${operation} with an unknown field`).toBe(422);
        }
      }
      // Whole bodies of the wrong type.
      for (const value of hostileValues) await attempt(method, path, { token, body: value });
    }
    // A NUL character cannot be stored: refused by validation, naming the field.
    const nul = await attempt("POST", "/api/tasks", { token: owner.token, body: { name: "a\u0000b", code, inputs: [1] } });
    expect(nul.status).toBe(422);
    expect(nul.json.errors).toEqual([{ path: "name", message: "must not contain NUL characters" }]);
    // Nothing polluted the prototypes of this process.
    expect(({} as Record<string, unknown>).role).toBeUndefined();
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("answers hostile ids and query strings on every route with 4xx", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json as { paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>> };
    const ids = ["'; DROP TABLE tasks; --", "%00", "..%2F..%2Fetc", "not-a-uuid", missingId, "x".repeat(3_000), "𝕏𝕏", "-1", "0"];
    for (const [template, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const queries = (operation.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
        // A creator's token reaches furthest into the routes; the others stop at authorization.
        for (const token of [owner.token, volunteer.token, undefined]) {
          const someIds = token === owner.token ? ids : ids.slice(0, 2);
          for (const id of template.includes("{") ? someIds : [""]) {
            const path = template.replace("{id}", encodeURIComponent(id)).replace("{action}", "start");
            if (path.endsWith("/events") && id === "") continue; // a valid stream stays open
            await attempt(method.toUpperCase(), path, { ...(token ? { token } : {}) });
          }
        }
        const base = template.replace("{id}", ownersTask).replace("{action}", "explode");
        for (const name of [...queries, "surprise"]) {
          for (const value of ["'", "-1", "1e999", "%00", "x".repeat(3_000), "__proto__"]) {
            // With the owner's token a stream whose query is valid would stay open: no token there.
            const token = base.endsWith("/events") ? undefined : owner.token;
            await attempt(method.toUpperCase(), `${base}?${name}=${encodeURIComponent(value)}`, { ...(token ? { token } : {}) });
          }
        }
      }
    }
  });

  it("refuses oversize bodies with 413 naming the limit, by header or by counting", async () => {
    const big = JSON.stringify({ name: "x".repeat(defaultBodyLimit) });
    for (const path of ["/api/auth/register", "/api/auth/login", "/api/volunteers", "/api/keys", "/api/tickets", "/api/work/lease"]) {
      const token = path.startsWith("/api/work") ? volunteer.token : owner.token;
      const res = await attempt("POST", path, { token, raw: big });
      expect(res.status, path).toBe(413);
      expect(res.json.detail).toContain(`${defaultBodyLimit / 1024} KiB`);
    }
    // A streamed body with no Content-Length is counted as it arrives.
    const stream = (bytes: number) => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= bytes) return controller.close();
          const chunk = new Uint8Array(Math.min(1 << 20, bytes - sent)).fill(0x20);
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      });
    };
    const bigTask = await t.fetcher("/api/tasks", {
      method: "POST",
      headers: { authorization: `Bearer ${owner.token}`, "content-type": "application/json" },
      body: stream(64 * 1024 * 1024 + 1),
      duplex: "half",
    } as RequestInit);
    expect(bigTask.status).toBe(413);
    expect(await bigTask.text()).toContain("64 MiB");
    const bigResults = await t.fetcher("/api/work/results", {
      method: "POST",
      headers: { authorization: `Bearer ${volunteer.token}`, "content-type": "application/json" },
      body: stream(32 * 1024 * 1024 + 1),
      duplex: "half",
    } as RequestInit);
    expect(bigResults.status).toBe(413);
    expect(await bigResults.text()).toContain("32 MiB");
    // Heartbeats carry checkpoints (up to 16 of 256 KiB of JSON each).
    const bigBeat = await t.fetcher("/api/work/heartbeat", {
      method: "POST",
      headers: { authorization: `Bearer ${volunteer.token}`, "content-type": "application/json" },
      body: stream(16 * 1024 * 1024 + 1),
      duplex: "half",
    } as RequestInit);
    expect(bigBeat.status).toBe(413);
    expect(await bigBeat.text()).toContain("16 MiB");
    expect(await rowCounts(t)).toEqual(counts);
  });

  it("treats replayed lease ids as no-ops and forged ones as 4xx", async () => {
    await t.call("POST", "/api/tasks", { token: owner.token, body: { name: "leases", code, inputs: [1, 2], start: true } });
    const { leases } = (await t.call("POST", "/api/work/lease", { token: volunteer.token, body: { max: 2, capabilities: { threads: 1 } } })).json;
    expect(leases.length).toBeGreaterThan(0);
    const results = leases.map((b: { leaseId: string; inputs: unknown[] }) => ({ leaseId: b.leaseId, results: b.inputs.map(() => "ok") }));
    const first = await t.call("POST", "/api/work/results", { token: volunteer.token, body: { results } });
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ accepted: 2, rejected: [] });
    counts = await rowCounts(t);
    // Replayed: accepted, changes nothing.
    for (let i = 0; i < 3; i++) {
      const replay = await attempt("POST", "/api/work/results", { token: volunteer.token, body: { results } });
      expect(replay.status).toBe(200);
      expect(await rowCounts(t)).toEqual(counts);
    }
    // Forged: a character changed anywhere (payload or MAC), truncated, extended, or garbage.
    const leaseId: string = leases[0].leaseId;
    const flip = (at: number) => leaseId.slice(0, at) + (leaseId[at] === "A" ? "B" : "A") + leaseId.slice(at + 1);
    const forgedIds = [flip(0), flip(5), flip(Math.floor(leaseId.length / 2)), flip(leaseId.length - 1), leaseId.slice(0, -2), `${leaseId}AA`, "", "'; DELETE FROM results; --"];
    for (const forged of forgedIds) {
      const res = await attempt("POST", "/api/work/results", { token: volunteer.token, body: { results: [{ leaseId: forged, results: ["x"] }] } });
      expect(res.status, forged.slice(0, 30)).toBeGreaterThanOrEqual(400);
    }
    // Another volunteer replaying this one's lease ids.
    const thief = await t.volunteer();
    counts = await rowCounts(t);
    expect((await attempt("POST", "/api/work/results", { token: thief.token, body: { results } })).status).toBeGreaterThanOrEqual(400);
    await attempt("POST", "/api/work/heartbeat", { token: volunteer.token, body: { leaseIds: forgedIds.filter(Boolean) } });
    expect(await rowCounts(t)).toEqual(counts);
  });

  it("never answered with a 5xx", () => {
    expect(seen.server).toEqual([]);
    expect(seen.total).toBeGreaterThan(1_000);
  });
});

describe.each(testBackends())("abuse limits on %s", (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    // Each request names its address in a header here; the entries take it from the socket or Cloudflare.
    t = await openTestApp(
      backend,
      { limits: { loginPerAccount: 3, loginPerIp: 5, registerPerIp: 2, mintPerHour: 2, mintPerDay: 2, mintPerAccountPerDay: 2 } },
      { clientIp: (c) => c.req.header("x-test-client-ip") ?? null },
    );
  });
  afterAll(async () => t?.dispose());

  const from = (ip: string) => ({ "x-test-client-ip": ip });

  it("stops failed sign-ins per account from an address, then per address, with 429 and Retry-After", async () => {
    await t.call("POST", "/api/auth/register", { body: { email: "victim@example.com", password: "the real password" }, headers: from("10.0.0.1") });
    for (let i = 0; i < 3; i++) {
      expect((await t.call("POST", "/api/auth/login", { body: { email: "victim@example.com", password: `guess ${i}...` }, headers: from("10.1.0.1") })).status).toBe(401);
    }
    const blocked = await t.call("POST", "/api/auth/login", { body: { email: "victim@example.com", password: "the real password" }, headers: from("10.1.0.1") });
    expect(blocked.status).toBe(429);
    // The guesses do not lock the owner out: from its own address it signs in (issue 15).
    expect((await t.call("POST", "/api/auth/login", { body: { email: "victim@example.com", password: "the real password" }, headers: from("10.2.0.1") })).status).toBe(200);
    expect(blocked.type).toBe("application/problem+json");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(blocked.headers.get("retry-after"))).toBeLessThanOrEqual(15 * 60);
    // Other accounts are untouched.
    await t.call("POST", "/api/auth/register", { body: { email: "bystander@example.com", password: "another password" }, headers: from("10.0.0.2") });
    expect((await t.call("POST", "/api/auth/login", { body: { email: "bystander@example.com", password: "another password" }, headers: from("10.3.0.1") })).status).toBe(200);
    // One address guessing across accounts is stopped too.
    for (let i = 0; i < 5; i++) {
      expect((await t.call("POST", "/api/auth/login", { body: { email: `nobody${i}@example.com`, password: "a guess..." }, headers: from("10.9.9.9") })).status).toBe(401);
    }
    expect((await t.call("POST", "/api/auth/login", { body: { email: "bystander@example.com", password: "another password" }, headers: from("10.9.9.9") })).status).toBe(429);
    expect((await t.call("POST", "/api/auth/login", { body: { email: "bystander@example.com", password: "another password" }, headers: from("10.3.0.2") })).status).toBe(200);
  });

  it("limits accounts and volunteer identities per address", async () => {
    // No address known (app.request): all such requests are one source, "unknown".
    for (let i = 0; i < 2; i++) expect((await t.volunteer(undefined)).token).toBeTruthy();
    expect((await t.call("POST", "/api/volunteers", { body: {} })).status).toBe(429);
    const v = (ip: string) => t.call("POST", "/api/volunteers", { body: {}, headers: from(ip) });
    expect((await v("10.5.0.1")).status).toBe(201);
    expect((await v("10.5.0.1")).status).toBe(201);
    const before = await rowCounts(t);
    const third = await v("10.5.0.1");
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBeTruthy();
    expect(await rowCounts(t)).toEqual(before);
    expect((await v("10.5.0.2")).status).toBe(201);
    const r = (ip: string, n: number) => t.call("POST", "/api/auth/register", { body: { email: `signup${n}@example.com`, password: "long enough" }, headers: from(ip) });
    expect((await r("10.6.0.1", 1)).status).toBe(201);
    expect((await r("10.6.0.1", 2)).status).toBe(201);
    expect((await r("10.6.0.1", 3)).status).toBe(429);
    expect((await r("10.6.0.2", 3)).status).toBe(201);
  });
});
