// The Workers entry (src/worker.ts) under `wrangler dev` (workerd, offline) against a fresh
// real Postgres database, driven over HTTP by the same suite as the in-process app. Workers
// need a database server, so this runs when DATABASE_URL is set (CI always sets it) and is
// reported as skipped otherwise.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migratePostgresUrl } from "@crowdcompute/db/migrate";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { adminBootstrapToken } from "../src/lib/admin-bootstrap.ts";
import { bundleWorker, freePort, startWranglerDev, type WranglerDev } from "../src/node/wrangler-dev.ts";
import { describeApiSuite } from "./api-suite.ts";
import { type ApiTarget, apiClient, rowCounts } from "./harness.ts";
import { sseReader } from "./sse.ts";

const adminUrl = process.env.DATABASE_URL;
const jwtSecret = "workers-test-secret-workers-test-secret";

describe.skipIf(!adminUrl)("the Workers entry under wrangler dev, against real postgres", { timeout: 180_000 }, () => {
  let dev: WranglerDev | null = null;
  let target: ApiTarget | null = null;
  let databaseUrl: string;
  let scratch: string | null = null;

  // wrangler's own output explains a failure (a 500's stack is only printed there).
  const showLogsOnFailure = () => onTestFailed(() => console.error(`wrangler dev output:\n${dev?.output() ?? ""}`));

  beforeAll(async () => {
    databaseUrl = await createTestDatabase(adminUrl!);
    await migratePostgresUrl(databaseUrl); // the template is migrated already; Workers never migrate
    scratch = mkdtempSync(join(tmpdir(), "cc-wrangler-"));
    dev = await startWranglerDev({
      script: await bundleWorker(join(scratch, "bundle")),
      port: await freePort(),
      persistTo: join(scratch, "state"),
      vars: {
        DATABASE_URL: databaseUrl,
        JWT_SECRET: jwtSecret,
        // Not embedded: the suite's admin registers with ADMIN_EMAIL and the operator's token (below).
        ADMIN_EMAIL: "admin@example.com",
        // Every request comes from 127.0.0.1 here: the suite makes more accounts than one address may.
        REGISTER_LIMIT_PER_IP: "1000",
        VOLUNTEER_MINT_PER_HOUR: "100000",
        VOLUNTEER_MINT_PER_DAY: "100000",
        VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY: "100000",
      },
    });
    const handle = createPostgresDb(databaseUrl, { max: 2 });
    const base = dev.url;
    const client = apiClient((path, init) => fetch(`${base}${path}`, init));
    // As the operator would: the ADMIN_EMAIL account presents the bootstrap token `npm run admin-token` prints.
    const adminToken = await adminBootstrapToken(jwtSecret, "admin@example.com");
    const register = async (email: string, password = "correct horse") => {
      const res = await client.call("POST", "/api/auth/register", { body: { email, password, ...(email === "admin@example.com" ? { adminToken } : {}) } });
      if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
      return res.json as Awaited<ReturnType<typeof client.register>>;
    };
    target = {
      ...client,
      register,
      name: "workers",
      db: handle.db,
      dispose: () => handle.close(),
    };
  }, 180_000);

  afterAll(async () => {
    await target?.dispose();
    await dev?.stop();
    if (databaseUrl) await dropDatabase(adminUrl!, new URL(databaseUrl).pathname.slice(1));
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  describeApiSuite("the API suite over HTTP", async () => ({ ...target!, dispose: async () => {} }));

  it("serves the API reference page with its script from this origin (a static asset), no other host", async () => {
    showLogsOnFailure();
    const page = await fetch(`${dev!.url}/api/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const sources = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
    expect(sources).toEqual(["/api/docs/scalar.js"]);
    expect(html).not.toMatch(/(src|href)="https?:/);
    const script = await fetch(`${dev!.url}/api/docs/scalar.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect((await script.text()).length).toBeGreaterThan(1_000_000);
  });

  it("serves live progress as Server-Sent Events by polling", async () => {
    showLogsOnFailure();
    const t = target!;
    const creator = await t.register("workers-sse@example.com");
    const task = (await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "sse", code: "export default (x) => x", inputs: [1], start: true } })).json.task;
    const { ticket } = (await t.call("POST", "/api/tickets", { token: creator.token, body: {} })).json;
    const events = sseReader(await fetch(`${dev!.url}/api/tasks/${task.id}/events?ticket=${ticket}`));
    expect(JSON.parse((await events.next())!.data).counts.done).toBe(0);
    const { token } = await t.volunteer();
    const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max: 1 } })).json;
    expect(leases.map((b: { taskId: string; firstIndex: number; inputs: unknown[] }) => [b.taskId, b.firstIndex, b.inputs])).toEqual([[task.id, 0, [1]]]);
    const posted = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, results: [1] }] } });
    expect(posted.json).toEqual({ accepted: 1, rejected: [] });
    let seen = JSON.parse((await events.next())!.data);
    while (seen.status !== "done") seen = JSON.parse((await events.next())!.data);
    expect(seen.counts.done).toBe(1);
    const end = await events.next();
    expect(end?.event).toBe("end");
    expect(JSON.parse(end!.data)).toEqual({ reason: "done" });
    expect(await events.next()).toBeNull();
  });

  it("answers hostile requests with 4xx and writes nothing, under workerd too", async () => {
    showLogsOnFailure();
    const t = target!;
    const creator = await t.register("workers-abuse@example.com");
    const before = await rowCounts(t);
    const task = (body: unknown) => t.call("POST", "/api/tasks", { token: creator.token, body });
    const cases: [string, Promise<{ status: number; type: string }>, number][] = [
      ["a NUL in a name", task({ name: "a\u0000b", code: "export default (x) => x", inputs: [1] }), 422],
      ["a NUL in the code", task({ name: "nul", code: "export default (x) => '\u0000'", inputs: [1] }), 422],
      ["a prototype key", t.call("POST", "/api/tasks", { token: creator.token, raw: '{"__proto__": {"x": 1}, "name": "p", "code": "export default (x) => x", "inputs": [1]}' }), 422],
      ["malformed JSON", t.call("POST", "/api/tasks", { token: creator.token, raw: '{"name": ' }), 400],
      ["an oversize body", t.call("POST", "/api/auth/login", { raw: JSON.stringify({ email: "x".repeat(300 * 1024) }) }), 413],
      ["a forged token", t.call("GET", "/api/tasks", { token: `${creator.token}x` }), 401],
      ["a forged API key", t.call("GET", "/api/tasks", { token: `cc_${"B".repeat(43)}` }), 401],
    ];
    for (const [what, pending, status] of cases) {
      const res = await pending;
      expect(res.status, what).toBe(status);
      expect(res.type, what).toBe("application/problem+json");
    }
    expect(await rowCounts(t)).toEqual(before);
  });

  it("checks passwords with PBKDF2 at 100,000 iterations under workerd", async () => {
    showLogsOnFailure();
    const t = target!;
    // PBKDF2 at 100,000 iterations runs under workerd: a wrong password is refused, the right one accepted.
    await t.register("workers-login@example.com", "the right password");
    expect((await t.call("POST", "/api/auth/login", { body: { email: "workers-login@example.com", password: "a wrong password" } })).status).toBe(401);
    expect((await t.call("POST", "/api/auth/login", { body: { email: "workers-login@example.com", password: "the right password" } })).status).toBe(200);
  });
});
