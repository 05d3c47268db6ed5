// The API's behaviour, written once against an ApiTarget so that it runs in process (PGlite,
// Postgres) and over real HTTP against the Workers entry under `wrangler dev`.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowCounts, type ApiTarget } from "./harness.ts";

const squareCode = "export default async function work(x, ctx) { return { index: ctx.index, square: x * x }; }";

export function describeApiSuite(title: string, open: () => Promise<ApiTarget>) {
describe(title, () => {
  let t: ApiTarget;
  let admin: { token: string; user: { id: string; role: string } };
  let creator: { token: string; user: { id: string; role: string } };

  beforeAll(async () => {
    t = await open();
    admin = await t.register("admin@example.com");
    creator = await t.register("Creator@Example.com");
  });
  afterAll(async () => t?.dispose());

  const createTask = async (body: Record<string, unknown>, token = creator.token) =>
    t.call("POST", "/api/tasks", { token, body: { name: "squares", code: squareCode, ...body } });

  describe("auth", () => {
    it("makes the first user of an embedded install admin and later ones creators", () => {
      expect(admin.user.role).toBe("admin");
      expect(creator.user.role).toBe("creator");
    });

    it("signs in with the right password only, case-insensitively on the email", async () => {
      const ok = await t.call("POST", "/api/auth/login", { body: { email: "creator@example.com", password: "correct horse" } });
      expect(ok.status).toBe(200);
      expect(ok.json.user.id).toBe(creator.user.id);
      const wrong = await t.call("POST", "/api/auth/login", { body: { email: "creator@example.com", password: "wrong horse" } });
      expect(wrong.status).toBe(401);
      expect(wrong.type).toBe("application/problem+json");
    });

    it("refuses a second account for one email and bad credentials shapes, storing nothing", async () => {
      const before = await rowCounts(t);
      expect((await t.call("POST", "/api/auth/register", { body: { email: "creator@example.com", password: "another pass" } })).status).toBe(409);
      const short = await t.call("POST", "/api/auth/register", { body: { email: "x@example.com", password: "short" } });
      expect(short.status).toBe(422);
      expect(short.json.errors[0].path).toBe("password");
      expect((await t.call("POST", "/api/auth/register", { body: { email: "not an email", password: "long enough" } })).status).toBe(422);
      expect((await t.call("POST", "/api/auth/register", { body: { email: "y@example.com", password: "long enough", role: "admin" } })).status).toBe(422);
      expect(await rowCounts(t)).toEqual(before);
    });
  });

  describe("tasks", () => {
    it("creates a task from code and a JSON array, one chunk per element", async () => {
      const res = await createTask({ inputs: [1, 2, 3], start: true, timeoutMs: 5000 });
      expect(res.status).toBe(201);
      expect(res.json.task).toMatchObject({
        name: "squares",
        status: "running",
        sealed: true,
        timeoutMs: 5000,
        counts: { total: 3, pending: 3, leased: 0, done: 0, failed: 0 },
        lastError: null,
      });
      expect(res.json.task.codeSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(res.json.task).not.toHaveProperty("code");
      const got = await t.call("GET", `/api/tasks/${res.json.task.id}`, { token: creator.token });
      expect(got.json.task.id).toBe(res.json.task.id);
    });

    it("rejects bad bodies with problem+json naming what is wrong, storing nothing", async () => {
      const before = await rowCounts(t);
      const syntax = await createTask({ code: "export default function (x) {\n  return x +;\n}", inputs: [1] });
      expect(syntax.status).toBe(422);
      expect(syntax.type).toBe("application/problem+json");
      expect(syntax.json.detail).toMatch(/line 2/);
      const noDefault = await createTask({ code: "export function work(x) { return x }", inputs: [1] });
      expect(noDefault.status).toBe(422);
      expect(noDefault.json.detail).toMatch(/default export/);
      const missing = await t.call("POST", "/api/tasks", { token: creator.token, body: { code: squareCode, inputs: [1] } });
      expect(missing.status).toBe(422);
      expect(missing.json.errors.map((e: { path: string }) => e.path)).toContain("name");
      const malformed = await t.call("POST", "/api/tasks", { token: creator.token, raw: '{"name": "x", ' });
      expect(malformed.status).toBe(400);
      expect(malformed.type).toBe("application/problem+json");
      expect((await createTask({ inputs: [1], range: { start: 0, end: 10, size: 1 } })).status).toBe(422);
      expect((await createTask({ inputs: [] })).status).toBe(422);
      expect((await createTask({ inputs: [1], replication: 2, quorum: 3 })).status).toBe(422);
      expect((await createTask({ inputs: [1], replication: 17 })).status).toBe(422);
      expect((await createTask({ inputs: [1], surprise: true })).status).toBe(422);
      expect((await createTask({ inputs: [1], timeoutMs: "soon" })).status).toBe(422);
      expect(await rowCounts(t)).toEqual(before);
    });

    it("requires a valid creator token and keeps creators out of each other's tasks", async () => {
      const before = await rowCounts(t);
      const none = await t.call("POST", "/api/tasks", { body: { name: "x", code: squareCode, inputs: [1] } });
      expect(none.status).toBe(401);
      expect(none.type).toBe("application/problem+json");
      expect((await createTask({ inputs: [1] }, "not-a-jwt")).status).toBe(401);
      const forged = creator.token.slice(0, -4) + (creator.token.endsWith("AAAA") ? "BBBB" : "AAAA");
      expect((await createTask({ inputs: [1] }, forged)).status).toBe(401);
      const { token: volunteerToken } = await t.volunteer();
      const afterVolunteer = await rowCounts(t);
      expect((await createTask({ inputs: [1] }, volunteerToken)).status).toBe(403);
      expect(await rowCounts(t)).toEqual(afterVolunteer);
      expect(afterVolunteer.volunteers).toBe((before.volunteers ?? 0) + 1);

      const mine = await createTask({ inputs: [1] });
      const other = await t.register("other@example.com");
      expect((await t.call("GET", `/api/tasks/${mine.json.task.id}`, { token: other.token })).status).toBe(403);
      expect((await t.call("GET", `/api/tasks/${mine.json.task.id}`, { token: admin.token })).status).toBe(200);
      expect((await t.call("GET", "/api/tasks/0192aaaa-0000-7000-8000-000000000000", { token: creator.token })).status).toBe(404);
      expect((await t.call("GET", "/api/tasks/not-a-uuid", { token: creator.token })).status).toBe(404);
      const list = await t.call("GET", "/api/tasks?limit=2", { token: other.token });
      expect(list.json).toEqual({ items: [], nextCursor: null });
    });

    it("moves through start, pause, resume and cancel, and refuses impossible moves", async () => {
      const draft = await createTask({ inputs: [1, 2] });
      const id = draft.json.task.id;
      expect(draft.json.task.status).toBe("draft");
      expect((await t.call("POST", `/api/tasks/${id}/start`, { token: creator.token })).json.task.status).toBe("running");
      expect((await t.call("POST", `/api/tasks/${id}/pause`, { token: creator.token })).json.task.status).toBe("paused");
      expect((await t.call("POST", `/api/tasks/${id}/pause`, { token: creator.token })).status).toBe(409);
      expect((await t.call("POST", `/api/tasks/${id}/resume`, { token: creator.token })).json.task.status).toBe("running");
      expect((await t.call("POST", `/api/tasks/${id}/cancel`, { token: creator.token })).json.task.status).toBe("cancelled");
      expect((await t.call("POST", `/api/tasks/${id}/explode`, { token: creator.token })).status).toBe(422);
    });
  });

  describe("work", () => {
    it("leases signed chunks, takes results with the next batch, and serves results in index order", async () => {
      await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
      const inputs = Array.from({ length: 10 }, (_, i) => i + 1);
      const task = (await createTask({ inputs, start: true })).json.task;
      const { token } = await t.volunteer();

      const first = await t.call("POST", "/api/work/lease", { token, body: { max: 4, capabilities: { threads: 2 } } });
      expect(first.status).toBe(200);
      expect(first.json.leases).toHaveLength(4);
      const lease0 = first.json.leases[0];
      expect(lease0).toMatchObject({ taskId: task.id, index: 0, input: 1, codeSha256: task.codeSha256, wasmSha256: null });
      // timeoutMs · ⌈4 / 2⌉ + 30 s grace
      const deadlineIn = Date.parse(lease0.deadline) - Date.now();
      expect(deadlineIn).toBeGreaterThan(140_000);
      expect(deadlineIn).toBeLessThanOrEqual(150_000);

      const code = await t.call("GET", `/api/tasks/${task.id}/code`, { token });
      expect(code.text).toBe(squareCode);
      expect(code.headers.get("etag")).toBe(`"${task.codeSha256}"`);

      const results = first.json.leases.map((l: { leaseId: string; input: number; index: number }) => ({
        leaseId: l.leaseId,
        result: { index: l.index, square: l.input * l.input },
        cpuMs: 3,
      }));
      const posted = await t.call("POST", "/api/work/results", { token, body: { results, next: { max: 64 } } });
      expect(posted.status).toBe(200);
      expect(posted.json.accepted).toBe(4);
      expect(posted.json.rejected).toEqual([]);
      expect(posted.json.leases.map((l: { index: number }) => l.index)).toEqual([4, 5, 6, 7, 8, 9]);

      // A repeat is accepted and changes nothing.
      const before = await rowCounts(t);
      expect((await t.call("POST", "/api/work/results", { token, body: { results } })).json).toEqual({ accepted: 4, rejected: [] });
      expect(await rowCounts(t)).toEqual(before);

      const rest = posted.json.leases.map((l: { leaseId: string; input: number; index: number }) => ({
        leaseId: l.leaseId,
        result: { index: l.index, square: l.input * l.input },
      }));
      await t.call("POST", "/api/work/results", { token, body: { results: rest } });
      const done = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
      expect(done.status).toBe("done");
      expect(done.counts).toEqual({ total: 10, pending: 0, leased: 0, done: 10, failed: 0 });

      const download = await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator.token });
      expect(download.type).toMatch(/application\/x-ndjson/);
      const lines = download.text.trim().split("\n").map((line) => JSON.parse(line));
      expect(lines).toEqual(inputs.map((x, index) => ({ index, input: x, status: "done", result: { index, square: x * x } })));
      // Results are the owner's.
      expect((await t.call("GET", `/api/tasks/${task.id}/results`, { token })).status).toBe(403);
    });

    it("retries a throwing chunk up to maxAttempts and shows lastError", async () => {
      await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
      const task = (await createTask({ inputs: [7], start: true, maxAttempts: 2 })).json.task;
      const { token } = await t.volunteer();
      for (let attempt = 1; attempt <= 2; attempt++) {
        const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max: 1 } })).json;
        expect(leases).toHaveLength(1);
        const error = { kind: "throw", message: `bad input 7 (attempt ${attempt})` };
        expect((await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: leases[0].leaseId, error }] } })).json.accepted).toBe(1);
        const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
        expect(view.lastError).toEqual({ index: 0, ...error });
      }
      const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
      expect(view.status).toBe("failed");
      expect(view.counts).toMatchObject({ failed: 1, done: 0, pending: 0 });
      const lines = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator.token })).text.trim().split("\n");
      expect(JSON.parse(lines[0]!)).toEqual({ index: 0, input: 7, status: "failed", error: { kind: "throw", message: "bad input 7 (attempt 2)" } });
    });

    it("rejects forged, foreign and malformed submissions without writing anything", async () => {
      await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
      await createTask({ inputs: [1, 2], start: true });
      const alice = await t.volunteer();
      const bob = await t.volunteer();
      const { leases } = (await t.call("POST", "/api/work/lease", { token: alice.token, body: { max: 2 } })).json;
      const leaseId: string = leases[0].leaseId;
      const before = await rowCounts(t);
      const tampered = leaseId.slice(0, 10) + (leaseId[10] === "A" ? "B" : "A") + leaseId.slice(11);
      const forged = await t.call("POST", "/api/work/results", { token: alice.token, body: { results: [{ leaseId: tampered, result: 1 }] } });
      expect(forged.status).toBe(422);
      expect(forged.type).toBe("application/problem+json");
      const foreign = await t.call("POST", "/api/work/results", { token: bob.token, body: { results: [{ leaseId, result: 1 }] } });
      expect(foreign.status).toBe(403);
      const mixed = await t.call("POST", "/api/work/results", {
        token: alice.token,
        body: { results: [{ leaseId: leases[1].leaseId, result: 2 }, { leaseId: "garbage", result: 1 }] },
      });
      expect(mixed.status).toBe(422);
      const both = await t.call("POST", "/api/work/results", { token: alice.token, body: { results: [{ leaseId, result: 1, error: { kind: "throw", message: "x" } }] } });
      expect(both.status).toBe(422);
      const neither = await t.call("POST", "/api/work/results", { token: alice.token, body: { results: [{ leaseId }] } });
      expect(neither.status).toBe(422);
      const huge = await t.call("POST", "/api/work/results", { token: alice.token, body: { results: [{ leaseId, result: "x".repeat(1024 * 1024 + 1) }] } });
      expect(huge.status).toBe(413);
      // The limit is on UTF-8 bytes: half a million two-byte characters are over it.
      const wide = await t.call("POST", "/api/work/results", { token: alice.token, body: { results: [{ leaseId, result: "é".repeat(512 * 1024) }] } });
      expect(wide.status).toBe(413);
      expect((await t.call("POST", "/api/work/lease", { token: alice.token, body: { max: 65 } })).status).toBe(422);
      expect((await t.call("POST", "/api/work/lease", { token: creator.token, body: { max: 1 } })).status).toBe(403);
      expect((await t.call("POST", "/api/work/lease", { body: { max: 1 } })).status).toBe(401);
      expect(await rowCounts(t)).toEqual(before);
    });

    it("answers a repeated Idempotency-Key with the same leases, less those reported since", async () => {
      await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
      await createTask({ inputs: Array.from({ length: 12 }, (_, i) => i), start: true });
      const { token } = await t.volunteer();
      const lease = (key: string, max = 4) => t.call("POST", "/api/work/lease", { token, body: { max }, headers: { "idempotency-key": key } });
      const ids = (response: { json: { leases: { leaseId: string }[] } }) => response.json.leases.map((l) => l.leaseId);

      const first = await lease("request-1");
      expect(first.json.leases.map((l: { index: number }) => l.index)).toEqual([0, 1, 2, 3]);
      const before = await rowCounts(t);
      const repeat = await lease("request-1");
      expect(repeat.json).toEqual(first.json);
      expect(await rowCounts(t)).toEqual(before);

      // Another key leases anew; the key is per volunteer.
      expect((await lease("request-2")).json.leases.map((l: { index: number }) => l.index)).toEqual([4, 5, 6, 7]);
      const other = await t.volunteer();
      const othersLease = await t.call("POST", "/api/work/lease", { token: other.token, body: { max: 4 }, headers: { "idempotency-key": "request-1" } });
      expect(othersLease.json.leases.map((l: { index: number }) => l.index)).toEqual([8, 9, 10, 11]);

      // Reported chunks drop out of a repeat; a results post with `next` replays its lease too.
      const [done, ...rest] = first.json.leases as { leaseId: string; input: number }[];
      const posted = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: done!.leaseId, result: 0 }] } });
      expect(posted.json.accepted).toBe(1);
      expect(ids(await lease("request-1"))).toEqual(rest.map((l) => l.leaseId));
      const results = rest.map((l) => ({ leaseId: l.leaseId, result: l.input }));
      const withNext = await t.call("POST", "/api/work/results", { token, body: { results, next: { max: 4 } }, headers: { "idempotency-key": "request-3" } });
      expect(withNext.json).toMatchObject({ accepted: 3, leases: [] });

      for (const bad of ["", "x".repeat(201), "has space", "naïve"]) {
        const refused = await t.call("POST", "/api/work/lease", { token, body: { max: 1 }, headers: { "idempotency-key": bad } });
        expect(refused.status, JSON.stringify(bad)).toBeGreaterThanOrEqual(400);
        expect(refused.status).toBeLessThan(500);
      }
    });

    it("answers with retryAfterMs when there is no work", async () => {
      await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
      const { token } = await t.volunteer();
      expect((await t.call("POST", "/api/work/lease", { token, body: { max: 8 } })).json).toEqual({ leases: [], retryAfterMs: 2000 });
    });
  });

  describe("edges", () => {
    it("answers unknown API routes with a problem, and refuses requests from the sandbox origin", async () => {
      const missing = await t.call("GET", "/api/nope");
      expect(missing.status).toBe(404);
      expect(missing.type).toBe("application/problem+json");
      const fromSandbox = await t.call("GET", "/api/health", { headers: { origin: "http://127.0.0.1:8788" } });
      expect(fromSandbox.status).toBe(403);
    });

    it("reports health", async () => {
      expect((await t.call("GET", "/api/health")).json).toEqual({ status: "ok", db: "ok" });
    });
  });
});
}
