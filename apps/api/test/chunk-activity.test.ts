// What creators see of chunks while and after volunteers compute them: progress and
// checkpoints carried by heartbeats, console output carried by block reports, shown in the
// chunk listing and the task's event stream; a retry's lease hands on the checkpoint.
// Everything a volunteer sends is bounded and refused whole (a 4xx that changes nothing).

import { type LeasedBlock, MAX_CHECKPOINT_CHARS, MAX_CONSOLE_CHARS } from "@crowdcompute/contract";
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, rowCounts, type TestApp } from "./harness.ts";
import { sseReader } from "./sse.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("chunk progress, console and checkpoints over HTTP on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  beforeAll(async () => {
    t = await openTestApp(backend, { leaseGraceMs: 100 });
    creator = (await t.register("activity@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const startTask = async (inputs: unknown[], options: Record<string, unknown> = {}) => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const res = await t.call("POST", "/api/tasks", { token: creator, body: { name: "activity", code: "export default (x) => x", inputs, start: true, ...options } });
    expect(res.status).toBe(201);
    return res.json.task.id as string;
  };
  const lease = async (token: string, max: number) =>
    (await t.call("POST", "/api/work/lease", { token, body: { max, capabilities: { threads: Math.max(1, Math.ceil(max / 2)) } } })).json.leases as LeasedBlock[];
  const beat = (token: string, body: unknown) => t.call("POST", "/api/work/heartbeat", { token, body });
  const chunks = async (taskId: string, query = "") => (await t.call("GET", `/api/tasks/${taskId}/chunks${query}`, { token: creator })).json.items as any[];
  const deadlines = async () => {
    const rows = (await t.db.execute(sql`SELECT id, deadline::text AS deadline FROM leases ORDER BY id`)) as unknown;
    return JSON.stringify(Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows);
  };

  it("shows the latest progress of each chunk in flight in the listing; a finished chunk has none", async () => {
    const taskId = await startTask([10, 20, 30, 40]);
    const v = await t.volunteer();
    const [block] = await lease(v.token, 4);
    expect(block!.inputs).toEqual([10, 20, 30, 40]);
    const sent = await beat(v.token, {
      leaseIds: [block!.leaseId],
      progress: {
        [block!.leaseId]: [
          { offset: 1, fraction: 0.4, message: "reading" },
          { offset: 3, fraction: 0.9 },
        ],
      },
    });
    expect(sent.json).toEqual({ extended: [block!.leaseId], lost: [], cancelled: [] });
    const leased = await chunks(taskId, "?status=leased");
    expect(leased.map((c) => [c.index, c.progress && { fraction: c.progress.fraction, message: c.progress.message }])).toEqual([
      [0, null],
      [1, { fraction: expect.closeTo(0.4, 5), message: "reading" }],
      [2, null],
      [3, { fraction: expect.closeTo(0.9, 5), message: null }],
    ]);
    expect(Date.parse(leased[1].progress.at)).not.toBeNaN();
    expect(leased[0]).toMatchObject({ checkpointAt: null, console: null });

    const done = await t.call("POST", "/api/work/results", { token: v.token, body: { results: [{ leaseId: block!.leaseId, results: [1, 2, 3, 4] }] } });
    expect(done.json).toMatchObject({ accepted: 4, rejected: [] });
    expect((await chunks(taskId)).map((c) => c.progress)).toEqual([null, null, null, null]);
  });

  it("refuses progress and checkpoints for leases the beat does not name, offsets outside the block, twice given, too big or too deep, and changes nothing", async () => {
    await startTask([1, 2, 3, 4]);
    const v = await t.volunteer();
    const other = await t.volunteer();
    const [block] = await lease(v.token, 2);
    const [theirs] = await lease(other.token, 2);
    const before = { counts: await rowCounts(t), deadlines: await deadlines() };
    const id = block!.leaseId;
    const refused = [
      // A lease id only in `progress`, not in `leaseIds`: not verified as the caller's.
      [422, { leaseIds: [id], progress: { "not-this-one": [{ offset: 0, fraction: 0.5 }] } }],
      [422, { leaseIds: [id], progress: { [id]: [{ offset: 2, fraction: 0.5 }] } }],
      [
        422,
        {
          leaseIds: [id],
          progress: {
            [id]: [
              { offset: 0, fraction: 0.5 },
              { offset: 0, fraction: 0.6 },
            ],
          },
        },
      ],
      [422, { leaseIds: [id], progress: { [id]: [{ offset: 0, fraction: 2 }] } }],
      [422, { leaseIds: [id], progress: { [id]: 0.5 } }],
      [422, { leaseIds: [id], progress: { [id]: [{ offset: 0, fraction: 0.5, message: "x".repeat(257) }] } }],
      [413, { leaseIds: [id], checkpoints: { [id]: [{ offset: 0, state: "x".repeat(MAX_CHECKPOINT_CHARS) }] } }],
      [422, { leaseIds: [id], checkpoints: { [id]: [{ offset: 0, state: JSON.parse("[".repeat(65) + "]".repeat(65)) }] } }],
    ] as const;
    for (const [status, body] of refused) {
      const res = await beat(v.token, body);
      expect([res.status, res.type], JSON.stringify(body).slice(0, 120)).toEqual([status, "application/problem+json"]);
    }
    // Another volunteer's lease id: 403, whatever it carries.
    expect((await beat(v.token, { leaseIds: [theirs!.leaseId], progress: { [theirs!.leaseId]: [{ offset: 0, fraction: 0.1 }] } })).status).toBe(403);
    expect({ counts: await rowCounts(t), deadlines: await deadlines() }).toEqual(before);
  });

  it("hands a chunk's checkpoint to the volunteer that gets it after the first one vanished", async () => {
    const taskId = await startTask([5, 6], { timeoutMs: 200 });
    const first = await t.volunteer();
    const second = await t.volunteer();
    const [block] = await lease(first.token, 2);
    const state = { done: 41, partial: [1, 2, 3], note: "ünïcode" };
    const saved = await beat(first.token, { leaseIds: [block!.leaseId], checkpoints: { [block!.leaseId]: [{ offset: 1, state }] }, progress: { [block!.leaseId]: [{ offset: 1, fraction: 0.41 }] } });
    expect(saved.status).toBe(200);
    expect((await chunks(taskId))[1].checkpointAt).toEqual(expect.any(String));
    // The first volunteer reports chunk 0 and vanishes: chunk 1 comes back after its deadline
    // (two timeouts of 200 ms and a grace of 100 ms), alone, with its checkpoint.
    await t.call("POST", "/api/work/results", { token: first.token, body: { results: [{ leaseId: block!.leaseId, results: [50] }] } });
    await sleep(700);
    let retry: LeasedBlock[] = [];
    for (let i = 0; i < 20 && retry.length === 0; i++) {
      retry = await lease(second.token, 1);
      if (retry.length === 0) await sleep(300); // the sweep runs at most every 250 ms
    }
    expect(retry.map((b) => [b.firstIndex, b.inputs, b.checkpoints])).toEqual([[1, [6], [{ offset: 0, state }]]]);
    // The vanished volunteer's progress is not shown for the new lease.
    expect((await chunks(taskId))[1].progress).toBeNull();
    await t.call("POST", "/api/work/results", { token: second.token, body: { results: [{ leaseId: retry[0]!.leaseId, results: [60] }] } });
    expect((await chunks(taskId)).map((c) => [c.status, c.checkpointAt])).toEqual([
      ["done", null],
      ["done", null],
    ]);
  });

  it("keeps each chunk's console output with its result or error, bounded, and refuses lines without one", async () => {
    const taskId = await startTask([1, 2, 3], { maxAttempts: 1 });
    const v = await t.volunteer();
    const [block] = await lease(v.token, 3);
    const before = await rowCounts(t);
    const bad = [
      // Chunk 2 has no result or error in the report.
      [422, { leaseId: block!.leaseId, results: [1, 2], console: [{ offset: 2, lines: [{ level: "log", text: "x" }] }] }],
      [
        422,
        {
          leaseId: block!.leaseId,
          results: [1, 2],
          console: [
            { offset: 0, lines: [] },
            { offset: 0, lines: [] },
          ],
        },
      ],
      [422, { leaseId: block!.leaseId, results: [1, 2], console: [{ offset: 0, lines: [{ level: "log", text: "x".repeat(MAX_CONSOLE_CHARS + 1) }] }] }],
      [422, { leaseId: block!.leaseId, results: [1, 2], console: [{ offset: 0, lines: Array.from({ length: 101 }, () => ({ level: "log", text: "" })) }] }],
    ] as const;
    for (const [status, report] of bad) expect((await t.call("POST", "/api/work/results", { token: v.token, body: { results: [report] } })).status).toBe(status);
    expect(await rowCounts(t)).toEqual(before);

    const report = {
      leaseId: block!.leaseId,
      results: [1, 2],
      errors: [{ offset: 2, kind: "throw", message: "three is bad" }],
      console: [
        {
          offset: 0,
          lines: [
            { level: "log", text: "one" },
            { level: "warn", text: "careful" },
          ],
        },
        { offset: 2, lines: [{ level: "error", text: "about to throw" }], truncated: true },
      ],
    };
    expect((await t.call("POST", "/api/work/results", { token: v.token, body: { results: [report] } })).json).toMatchObject({ accepted: 3, rejected: [] });
    const listed = await chunks(taskId);
    expect(listed.map((c) => c.console && { outcome: c.console.outcome, lines: c.console.lines, truncated: c.console.truncated })).toEqual([
      {
        outcome: "done",
        lines: [
          { level: "log", text: "one" },
          { level: "warn", text: "careful" },
        ],
        truncated: false,
      },
      null,
      { outcome: "error", lines: [{ level: "error", text: "about to throw" }], truncated: true },
    ]);
    expect(listed[2].status).toBe("failed");
  });

  it("streams the chunks running now and every chunk's console output, all of it before the end", async () => {
    const taskId = await startTask([1, 2, 3, 4]);
    const { ticket } = (await t.call("POST", "/api/tickets", { token: creator, body: {} })).json;
    const response = await t.fetcher(`/api/tasks/${taskId}/events?ticket=${ticket}&console=all`, { method: "GET" });
    const events = sseReader(response);
    expect((await events.next())?.event).toBe("progress");
    const v = await t.volunteer();
    const [block] = await lease(v.token, 4);
    await beat(v.token, { leaseIds: [block!.leaseId], progress: { [block!.leaseId]: [{ offset: 2, fraction: 0.5, message: "half" }] } });
    const seen: { event: string; data: any }[] = [];
    const until = async (wanted: (e: { event: string; data: any }) => boolean) => {
      for (;;) {
        const next = await events.next();
        expect(next).not.toBeNull();
        const parsed = { event: next!.event, data: JSON.parse(next!.data) };
        seen.push(parsed);
        if (wanted(parsed)) return parsed;
      }
    };
    const running = await until((e) => e.event === "chunks");
    expect(running.data.items.map((c: any) => [c.index, c.fraction, c.message])).toEqual([[2, 0.5, "half"]]);

    const consoleOf = (offset: number, text: string) => ({ offset, lines: [{ level: "info", text }] });
    await t.call("POST", "/api/work/results", { token: v.token, body: { results: [{ leaseId: block!.leaseId, results: [1, 2], console: [consoleOf(1, "chunk one")] }] } });
    await t.call("POST", "/api/work/results", { token: v.token, body: { results: [{ leaseId: block!.leaseId, offset: 2, results: [3, 4], console: [consoleOf(3, "chunk three")] }] } });
    await until((e) => e.event === "end");
    const consoles = seen.filter((e) => e.event === "console").map((e) => [e.data.index, e.data.outcome, e.data.lines[0].text]);
    expect(consoles).toEqual([
      [1, "done", "chunk one"],
      [3, "done", "chunk three"],
    ]);
    // The list of running chunks empties once nothing runs.
    expect(seen.filter((e) => e.event === "chunks").at(-1)!.data).toEqual({ items: [] });

    // A stream resumed after the first console event gets only the rest.
    const cursor = seen.find((e) => e.event === "console")!.data.cursor;
    const resumed = sseReader(await t.fetcher(`/api/tasks/${taskId}/events?ticket=${ticket}&consoleAfter=${cursor}`, { method: "GET" }));
    const after: string[] = [];
    for (let next = await resumed.next(); next; next = await resumed.next()) if (next.event === "console") after.push(JSON.parse(next.data).lines[0].text);
    expect(after).toEqual(["chunk three"]);
    expect((await t.fetcher(`/api/tasks/${taskId}/events?ticket=${ticket}&consoleAfter=nonsense`, { method: "GET" })).status).toBe(422);
  });
});
