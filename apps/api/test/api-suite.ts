// The API's behaviour, written once against an ApiTarget so that it runs in process (PGlite,
// Postgres) and over real HTTP against the Workers entry under `wrangler dev`.
import { leaseResponseSchema, resultsResponseSchema } from "@crowdcompute/contract";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiTarget, rowCounts } from "./harness.ts";

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

    const createTask = async (body: Record<string, unknown>, token = creator.token) => t.call("POST", "/api/tasks", { token, body: { name: "squares", code: squareCode, ...body } });

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
      // A new task gives 2 chunks a thread: a volunteer of max/2 threads gets `max` chunks.
      const leaseBody = (max: number, extra: Record<string, unknown> = {}) => ({ max, capabilities: { threads: Math.ceil(max / 2) }, ...extra });

      // In process and on Workers (no LISTEN there) nothing holds a request: `waitMs` is answered
      // at once, with when to ask again (docs/architecture.md, "Dispatch", waiting volunteers).
      it("answers a lease with waitMs and no work at once where nothing waits, saying when to ask again", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status IN ('running', 'paused')`);
        const { token } = await t.volunteer();
        const res = await t.call("POST", "/api/work/lease", { token, body: leaseBody(2, { waitMs: 25_000 }) });
        expect(res.status).toBe(200);
        expect(res.json.leases).toEqual([]);
        expect(res.json.retryAfterMs).toBeGreaterThan(0);
      });

      it("leases signed blocks, takes results per block with the next lease, and serves results in index order", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const inputs = Array.from({ length: 10 }, (_, i) => i + 1);
        const task = (await createTask({ inputs, start: true })).json.task;
        const { token } = await t.volunteer();

        const first = await t.call("POST", "/api/work/lease", { token, body: { max: 4, capabilities: { threads: 2 } } });
        expect(first.status).toBe(200);
        expect(first.json.leases).toHaveLength(1);
        const block = first.json.leases[0];
        expect(block).toMatchObject({ taskId: task.id, firstIndex: 0, inputs: [1, 2, 3, 4], codeSha256: task.codeSha256, wasmSha256: null, entry: "work" });
        expect(block.reportedOffsets).toBeUndefined();
        // The silence window (LEASE_SILENT_MS, 15 s): sooner than what the chunks need,
        // timeoutMs · ⌈4 / 2⌉ + 30 s grace, to which heartbeats may carry it.
        const deadlineIn = Date.parse(block.deadline) - Date.now();
        expect(deadlineIn).toBeGreaterThan(10_000);
        expect(deadlineIn).toBeLessThanOrEqual(15_000);

        const code = await t.call("GET", `/api/tasks/${task.id}/code`, { token });
        expect(code.text).toBe(squareCode);
        expect(code.headers.get("etag")).toBe(`"${task.codeSha256}"`);

        const squares = (b: { firstIndex: number; inputs: number[] }, from = 0, to = b.inputs.length) => b.inputs.slice(from, to).map((x, k) => ({ index: b.firstIndex + from + k, square: x * x }));
        const report = { leaseId: block.leaseId, results: squares(block), cpuMs: 12 };
        const posted = await t.call("POST", "/api/work/results", { token, body: { results: [report], next: leaseBody(64) } });
        expect(posted.status).toBe(200);
        expect(posted.json.accepted).toBe(4);
        expect(posted.json.rejected).toEqual([]);
        expect(posted.json.leases.map((b: { firstIndex: number; inputs: number[] }) => [b.firstIndex, b.inputs])).toEqual([[4, [5, 6, 7, 8, 9, 10]]]);

        // A repeat is accepted and changes nothing, whole or as an overlapping part.
        const before = await rowCounts(t);
        expect((await t.call("POST", "/api/work/results", { token, body: { results: [report] } })).json).toEqual({ accepted: 4, rejected: [] });
        const part = { leaseId: block.leaseId, offset: 1, results: squares(block, 1, 3) };
        expect((await t.call("POST", "/api/work/results", { token, body: { results: [part] } })).json).toEqual({ accepted: 2, rejected: [] });
        expect(await rowCounts(t)).toEqual(before);

        // The next block in two parts, in one request.
        const next = posted.json.leases[0];
        const parts = [
          { leaseId: next.leaseId, offset: 0, results: squares(next, 0, 2) },
          { leaseId: next.leaseId, offset: 2, results: squares(next, 2), cpuMs: 4 },
        ];
        expect((await t.call("POST", "/api/work/results", { token, body: { results: parts } })).json).toEqual({ accepted: 6, rejected: [] });
        const done = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
        expect(done.status).toBe("done");
        expect(done.counts).toEqual({ total: 10, pending: 0, leased: 0, done: 10, failed: 0, awaitingCopy: 0 });
        // Three rows for ten chunks: the first block whole, the second in its two parts.
        const [rows] = await t.db
          .execute(sql`SELECT count(*)::int AS n FROM results WHERE task_id = ${task.id}`)
          .then((out) => (Array.isArray(out) ? out : (out as { rows: unknown[] }).rows) as { n: number }[]);
        expect(Number(rows!.n)).toBe(3);

        const download = await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator.token });
        expect(download.type).toMatch(/application\/x-ndjson/);
        const lines = download.text
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line));
        expect(lines).toEqual(inputs.map((x, index) => ({ index, input: x, status: "done", result: { index, square: x * x } })));
        // Results are the owner's.
        expect((await t.call("GET", `/api/tasks/${task.id}/results`, { token })).status).toBe(403);
      });

      it("retries a throwing chunk up to maxAttempts and shows lastError; a block's other chunks count", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const task = (await createTask({ inputs: [7, 8, 9], start: true, maxAttempts: 2 })).json.task;
        const { token } = await t.volunteer();
        const { leases } = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(3) })).json;
        expect(leases.map((b: { firstIndex: number; inputs: number[] }) => [b.firstIndex, b.inputs])).toEqual([[0, [7, 8, 9]]]);
        const firstError = { kind: "throw", message: "bad input 7 (attempt 1)" };
        const reported = await t.call("POST", "/api/work/results", {
          token,
          body: { results: [{ leaseId: leases[0].leaseId, offset: 1, results: [64, 81], errors: [{ offset: 0, ...firstError }] }] },
        });
        expect(reported.json).toEqual({ accepted: 3, rejected: [] });
        expect((await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task.lastError).toEqual({ index: 0, ...firstError });
        // The failed chunk comes back alone, as a block of one.
        const retry = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(3) })).json.leases;
        expect(retry.map((b: { firstIndex: number; inputs: number[] }) => [b.firstIndex, b.inputs])).toEqual([[0, [7]]]);
        const error = { kind: "throw", message: "bad input 7 (attempt 2)" };
        expect((await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: retry[0].leaseId, errors: [{ offset: 0, ...error }] }] } })).json.accepted).toBe(1);
        const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
        expect(view.lastError).toEqual({ index: 0, ...error });
        expect(view.status).toBe("done");
        expect(view.counts).toMatchObject({ failed: 1, done: 2, pending: 0 });
        const lines = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator.token })).text.trim().split("\n");
        expect(JSON.parse(lines[0]!)).toEqual({ index: 0, input: 7, status: "failed", error });
        expect(lines.slice(1).map((line) => JSON.parse(line).result)).toEqual([64, 81]);
      });

      it("rejects forged, foreign and malformed submissions without writing anything", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        await createTask({ inputs: [1, 2], start: true });
        const alice = await t.volunteer();
        const bob = await t.volunteer();
        const { leases } = (await t.call("POST", "/api/work/lease", { token: alice.token, body: leaseBody(2) })).json;
        const leaseId: string = leases[0].leaseId;
        const before = await rowCounts(t);
        const post = (results: unknown, token = alice.token) => t.call("POST", "/api/work/results", { token, body: { results } });
        const tampered = leaseId.slice(0, 10) + (leaseId[10] === "A" ? "B" : "A") + leaseId.slice(11);
        const forged = await post([{ leaseId: tampered, results: [1] }]);
        expect(forged.status).toBe(422);
        expect(forged.type).toBe("application/problem+json");
        expect((await post([{ leaseId, results: [1] }], bob.token)).status).toBe(403);
        expect(
          (
            await post([
              { leaseId, results: [1, 2] },
              { leaseId: "garbage", results: [1] },
            ])
          ).status,
        ).toBe(422);
        // Offsets: outside the block, past it, reported twice in one request, a result and an error at once.
        expect((await post([{ leaseId, offset: 2, results: [1] }])).status).toBe(422);
        expect((await post([{ leaseId, results: [1, 2, 3] }])).status).toBe(422);
        expect((await post([{ leaseId, errors: [{ offset: 5, kind: "throw", message: "x" }] }])).status).toBe(422);
        expect(
          (
            await post([
              { leaseId, results: [1] },
              { leaseId, results: [1] },
            ])
          ).status,
        ).toBe(422);
        expect((await post([{ leaseId, results: [1], errors: [{ offset: 0, kind: "throw", message: "x" }] }])).status).toBe(422);
        expect((await post([{ leaseId, offset: -1, results: [1] }])).status).toBe(422);
        expect((await post([{ leaseId }])).status).toBe(422);
        expect((await post([{ leaseId, results: [1], result: 1 }])).status).toBe(422);
        expect((await post([{ leaseId, errors: [{ offset: 0, kind: "melted", message: "x" }] }])).status).toBe(422);
        expect((await post([{ leaseId, results: ["x".repeat(1024 * 1024 + 1)] }])).status).toBe(413);
        // The limit is on UTF-8 bytes: half a million two-byte characters are over it.
        expect((await post([{ leaseId, results: [1, "é".repeat(512 * 1024)] }])).status).toBe(413);
        expect((await t.call("POST", "/api/work/lease", { token: alice.token, body: { max: 16_385 } })).status).toBe(422);
        expect((await t.call("POST", "/api/work/lease", { token: alice.token, body: { max: 1, bufferMs: -1 } })).status).toBe(422);
        expect((await t.call("POST", "/api/work/lease", { token: alice.token, body: { max: 1, bufferMs: 600_001 } })).status).toBe(422);
        expect((await t.call("POST", "/api/work/lease", { token: creator.token, body: { max: 1 } })).status).toBe(403);
        expect((await t.call("POST", "/api/work/lease", { body: { max: 1 } })).status).toBe(401);
        expect(await rowCounts(t)).toEqual(before);
      });

      it("answers reports of a cancelled task as rejected runs, and changes nothing", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const task = (await createTask({ inputs: [1, 2, 3, 4], start: true })).json.task;
        const { token } = await t.volunteer();
        const [block] = (await t.call("POST", "/api/work/lease", { token, body: leaseBody(4) })).json.leases;
        expect((await t.call("POST", `/api/tasks/${task.id}/cancel`, { token: creator.token })).status).toBe(200);
        const before = await rowCounts(t);
        const posted = await t.call("POST", "/api/work/results", {
          token,
          body: {
            results: [
              { leaseId: block.leaseId, results: [1, 4], errors: [{ offset: 3, kind: "throw", message: "x" }] },
              { leaseId: block.leaseId, offset: 2, results: [9] },
            ],
          },
        });
        expect(posted.json).toEqual({ accepted: 0, rejected: [{ leaseId: block.leaseId, offset: 0, count: 4, reason: "task-cancelled" }] });
        expect(await rowCounts(t)).toEqual(before);
      });

      it("answers a repeated Idempotency-Key with the same blocks, less the chunks reported since", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        await createTask({ inputs: Array.from({ length: 12 }, (_, i) => i), start: true });
        const { token } = await t.volunteer();
        const lease = (key: string, max = 4) => t.call("POST", "/api/work/lease", { token, body: leaseBody(max), headers: { "idempotency-key": key } });
        const blocksOf = (response: { json: { leases: { firstIndex: number; inputs: number[]; reportedOffsets?: number[] }[] } }) =>
          response.json.leases.map((b) => [b.firstIndex, b.inputs, b.reportedOffsets ?? []]);

        const first = await lease("request-1");
        expect(blocksOf(first)).toEqual([[0, [0, 1, 2, 3], []]]);
        const before = await rowCounts(t);
        const repeat = await lease("request-1");
        expect(repeat.json).toEqual(first.json);
        expect(await rowCounts(t)).toEqual(before);

        // Another key leases anew; the key is per volunteer.
        expect(blocksOf(await lease("request-2"))).toEqual([[4, [4, 5, 6, 7], []]]);
        const other = await t.volunteer();
        const othersLease = await t.call("POST", "/api/work/lease", { token: other.token, body: leaseBody(4), headers: { "idempotency-key": "request-1" } });
        expect(blocksOf(othersLease)).toEqual([[8, [8, 9, 10, 11], []]]);

        // Reported chunks are named in a repeat; a results post with `next` replays its lease too.
        const { leaseId } = first.json.leases[0];
        const posted = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId, results: [0] }] } });
        expect(posted.json.accepted).toBe(1);
        const replayed = await lease("request-1");
        expect(blocksOf(replayed)).toEqual([[0, [0, 1, 2, 3], [0]]]);
        expect(replayed.json.leases[0].leaseId).toBe(leaseId);
        const withNext = await t.call("POST", "/api/work/results", {
          token,
          body: { results: [{ leaseId, offset: 1, results: [1, 2, 3] }], next: leaseBody(4) },
          headers: { "idempotency-key": "request-3" },
        });
        expect(withNext.json).toMatchObject({ accepted: 3, leases: [] });
        expect((await lease("request-1")).json.leases).toEqual([]);

        for (const bad of ["", "x".repeat(201), "has space", "naïve"]) {
          const refused = await t.call("POST", "/api/work/lease", { token, body: { max: 1 }, headers: { "idempotency-key": bad } });
          expect(refused.status, JSON.stringify(bad)).toBeGreaterThanOrEqual(400);
          expect(refused.status).toBeLessThan(500);
        }
      });

      it("sizes blocks to bufferMs: a task with no measured chunks starts at 2 chunks a thread, in one block", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const task = (await createTask({ inputs: Array.from({ length: 40 }, (_, i) => i), start: true })).json.task;
        const { token } = await t.volunteer();
        const sized = await t.call("POST", "/api/work/lease", { token, body: { bufferMs: 4000, capabilities: { threads: 3 } } });
        expect(sized.status).toBe(200);
        expect(sized.json.leases.map((b: { taskId: string; inputs: unknown[] }) => [b.taskId, b.inputs.length])).toEqual([[task.id, 6]]);
        // `max` caps it.
        expect((await t.call("POST", "/api/work/lease", { token, body: { max: 4, capabilities: { threads: 3 } } })).json.leases[0].inputs).toHaveLength(4);
      });

      it("takes blocks back when a volunteer releases them: their unreported chunks go to the next volunteer at once", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const task = (await createTask({ inputs: [10, 20, 30, 40], start: true })).json.task;
        const paused = await t.volunteer();
        const other = await t.volunteer();
        const [block] = (await t.call("POST", "/api/work/lease", { token: paused.token, body: leaseBody(4) })).json.leases;
        // It finished two chunks before pausing, reports them, and gives the block back.
        expect((await t.call("POST", "/api/work/results", { token: paused.token, body: { results: [{ leaseId: block.leaseId, results: [100, 400] }] } })).json.accepted).toBe(2);
        expect((await t.call("POST", "/api/work/release", { token: other.token, body: { leaseIds: [block.leaseId] } })).status).toBe(403);
        expect((await t.call("POST", "/api/work/release", { token: paused.token, body: { leaseIds: ["forged"] } })).status).toBe(422);
        const released = await t.call("POST", "/api/work/release", { token: paused.token, body: { leaseIds: [block.leaseId] } });
        expect(released.json).toEqual({ released: [block.leaseId], unknown: [] });
        expect((await t.call("POST", "/api/work/release", { token: paused.token, body: { leaseIds: [block.leaseId] } })).json).toEqual({ released: [], unknown: [block.leaseId] });
        const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
        expect(view.counts).toMatchObject({ done: 2, leased: 0, pending: 2 });
        // The rest goes out again at once, counting no expiry, one chunk a lease.
        const again = (await t.call("POST", "/api/work/lease", { token: other.token, body: leaseBody(4) })).json.leases;
        expect(again.map((b: { firstIndex: number; inputs: number[] }) => [b.firstIndex, b.inputs])).toEqual([
          [2, [30]],
          [3, [40]],
        ]);
        const chunks = (await t.call("GET", `/api/tasks/${task.id}/chunks?status=leased`, { token: creator.token })).json.items;
        expect(chunks.map((c: { index: number; expiries: number }) => [c.index, c.expiries])).toEqual([
          [2, 0],
          [3, 0],
        ]);
      });

      it("takes back what a lease request got when its volunteer will not read the answer, and voids one that has not arrived", async () => {
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const task = (await createTask({ inputs: [1, 2, 3, 4], start: true })).json.task;
        const closing = await t.volunteer();
        const refused = await t.call("POST", "/api/work/release", { token: closing.token, body: {} });
        expect(refused.status).toBe(422);
        expect(refused.json.errors[0].path).toBe("leaseIds");
        expect((await t.call("POST", "/api/work/release", { token: closing.token, body: { leaseRequestKey: "bad key" } })).status).toBe(422);

        // The answer of this request was lost with its page: the keyed release gives its block back.
        const leased = await t.call("POST", "/api/work/lease", { token: closing.token, body: leaseBody(2), headers: { "idempotency-key": "gone-1" } });
        expect(leased.json.leases).toHaveLength(1);
        expect((await t.call("POST", "/api/work/release", { token: closing.token, body: { leaseRequestKey: "gone-1" } })).json).toEqual({ released: [], unknown: [], requestReleased: 1 });
        // This one has not arrived when the release does: it gets nothing when it comes.
        expect((await t.call("POST", "/api/work/release", { token: closing.token, body: { leaseRequestKey: "gone-2" } })).json.requestReleased).toBe(0);
        expect((await t.call("POST", "/api/work/lease", { token: closing.token, body: leaseBody(2), headers: { "idempotency-key": "gone-2" } })).json.leases).toEqual([]);
        const view = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task;
        expect(view.counts).toMatchObject({ leased: 0, pending: 4 });
      });

      it("answers lease and results requests exactly as the contract's schemas say", async () => {
        // The handlers build these answers by hand for speed; parsing them must keep every field
        // (an extra one would be stripped) and refuse none.
        const exactly = (schema: { parse(value: unknown): unknown }, json: unknown) => expect(schema.parse(json)).toEqual(json);
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        await createTask({ inputs: Array.from({ length: 6 }, (_, i) => i), start: true, timeoutMs: 60_000 });
        const { token } = await t.volunteer();
        const lease = (key: string) => t.call("POST", "/api/work/lease", { token, body: leaseBody(2), headers: { "idempotency-key": key } });

        const first = await lease("schema-1");
        exactly(leaseResponseSchema, first.json);
        const { leaseId } = first.json.leases[0];
        const posted = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId, results: [{ square: 0 }] }], next: leaseBody(2) } });
        expect(posted.json.leases).toHaveLength(1);
        exactly(resultsResponseSchema, posted.json);
        // A repeat that names the chunks reported since.
        const repeat = await lease("schema-1");
        expect(repeat.json.leases[0].reportedOffsets).toEqual([0]);
        exactly(leaseResponseSchema, repeat.json);

        // A checkpoint, then a release: the retry carries the checkpoint.
        const held = posted.json.leases[0];
        const beat = await t.call("POST", "/api/work/heartbeat", { token, body: { leaseIds: [held.leaseId], checkpoints: { [held.leaseId]: [{ offset: 0, state: { i: 3 } }] } } });
        expect(beat.status).toBe(200);
        expect((await t.call("POST", "/api/work/release", { token, body: { leaseIds: [held.leaseId] } })).json.released).toEqual([held.leaseId]);
        const retry = await t.call("POST", "/api/work/lease", { token, body: leaseBody(2) });
        expect(retry.json.leases[0]).toMatchObject({ firstIndex: held.firstIndex, checkpoints: [{ offset: 0, state: { i: 3 } }] });
        exactly(leaseResponseSchema, retry.json);
        await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
        const rejected = await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: retry.json.leases[0].leaseId, results: [1] }] } });
        expect(rejected.json.rejected).toEqual([expect.objectContaining({ reason: "task-cancelled" })]);
        exactly(resultsResponseSchema, rejected.json);
        exactly(leaseResponseSchema, (await lease("schema-2")).json);
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
