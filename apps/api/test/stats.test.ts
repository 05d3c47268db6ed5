import { notifyTaskChanged } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/create-app.ts";
import { listeningFeed } from "../src/lib/live.ts";
import { openTestApp, testEnv, type TestApp } from "./harness.ts";
import { sseReader } from "./sse.ts";

const code = "export default (x) => x * 2";

describe.each(testBackends())("stats, leaderboard and live events on %s", (backend) => {
  let t: TestApp;
  let creator: { token: string; user: { id: string } };

  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = await t.register("stats@example.com");
  });
  afterAll(async () => t?.dispose());

  /** Leases up to `max` chunks for `token` and posts results (x·2, `cpuMs` each). */
  async function work(token: string, max: number, cpuMs = 10) {
    const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max } })).json;
    const results = leases.map((l: { leaseId: string; input: number }) => ({ leaseId: l.leaseId, result: l.input * 2, cpuMs }));
    if (results.length > 0) expect((await t.call("POST", "/api/work/results", { token, body: { results } })).status).toBe(200);
    return { leases, results };
  }

  it("counts tasks, chunks, CPU time, throughput and volunteers online, for anyone", async () => {
    const empty = await t.call("GET", "/api/stats");
    expect(empty.status).toBe(200);
    expect(empty.json).toMatchObject({ chunks: { done: 0, failed: 0 }, cpuMs: 0, chunksPerSec: 0, volunteersOnline: 0 });
    const task = (await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "s", code, inputs: [1, 2, 3, 4, 5, 6], start: true } })).json.task;
    await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "draft", code, inputs: [1] } });
    const alice = await t.volunteer();
    const bob = await t.volunteer(creator.token);
    const first = await work(alice.token, 2, 10);
    await work(bob.token, 3, 20);
    // A repeated submission is accepted and counted nowhere.
    await t.call("POST", "/api/work/results", { token: alice.token, body: { results: first.results } });
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the 1 s cache
    const stats = (await t.call("GET", "/api/stats")).json;
    expect(stats).toMatchObject({
      tasks: { running: 1, draft: 1, done: 0, failed: 0, paused: 0, cancelled: 0 },
      chunks: { done: 5, failed: 0 },
      cpuMs: 2 * 10 + 3 * 20,
      chunksPerSec: Math.round((5 / 60) * 100) / 100,
      volunteersOnline: 2,
    });
    expect(Date.parse(stats.at)).not.toBeNaN();

    const board = await t.call("GET", "/api/leaderboard");
    expect(board.status).toBe(200);
    const items = board.json.items as { kind: string; credit: number }[];
    // Best first: by credit (which depends on timing here), then chunks done.
    expect(items.map((i) => i.credit)).toEqual(items.map((i) => i.credit).sort((a, b) => b - a));
    expect([...items].sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
      { kind: "user", id: creator.user.id, name: "test volunteer", chunksDone: 3, cpuMs: 60, credit: expect.any(Number) },
      { kind: "volunteer", id: alice.volunteer.id, name: "test volunteer", chunksDone: 2, cpuMs: 20, credit: expect.any(Number) },
    ]);
    // Credit is at most the claimed CPU time (DESIGN §5), and only what won a quorum earns it.
    expect(items.find((i) => i.kind === "user")!.credit).toBeLessThanOrEqual(60);
    expect(items.find((i) => i.kind === "volunteer")!.credit).toBeLessThanOrEqual(20);
    expect((await t.call("GET", "/api/leaderboard?limit=1")).json.items).toHaveLength(1);
    expect((await t.call("GET", "/api/leaderboard?limit=1000")).status).toBe(422);
    expect((await t.call("GET", "/api/stats?surprise=1")).status).toBe(422);
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE id = ${task.id}`);
  });

  it("streams a task's progress to its owner, with a ticket or a bearer token, and ends with the task", async () => {
    const task = (await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "live", code, inputs: [1, 2, 3], start: true } })).json.task;
    const other = await t.register("not-the-owner@example.com");
    expect((await t.call("GET", `/api/tasks/${task.id}/events`)).status).toBe(401);
    expect((await t.call("GET", `/api/tasks/${task.id}/events`, { token: other.token })).status).toBe(403);
    expect((await t.call("GET", `/api/tasks/${task.id}/events?ticket=forged`)).status).toBe(401);
    // A ticket is not a bearer token, and a token is not a ticket.
    const { ticket, expiresAt } = (await t.call("POST", "/api/tickets", { token: creator.token, body: {} })).json;
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: ticket })).status).toBe(401);
    expect((await t.call("GET", `/api/tasks/${task.id}/events?ticket=${creator.token}`)).status).toBe(401);
    const othersTicket = (await t.call("POST", "/api/tickets", { token: other.token, body: {} })).json.ticket;
    expect((await t.call("GET", `/api/tasks/${task.id}/events?ticket=${othersTicket}`)).status).toBe(403);

    const response = await t.fetcher(`/api/tasks/${task.id}/events?ticket=${ticket}`, { method: "GET" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = sseReader(response);
    const first = await events.next();
    expect(first?.event).toBe("progress");
    expect(JSON.parse(first!.data)).toEqual((await t.call("GET", `/api/tasks/${task.id}`, { token: creator.token })).json.task);

    const { token } = await t.volunteer();
    await work(token, 1);
    let seen = JSON.parse((await events.next())!.data);
    expect(seen.counts.done).toBe(1);
    await work(token, 2);
    while (seen.status !== "done") {
      const next = await events.next();
      expect(next).not.toBeNull();
      seen = JSON.parse(next!.data);
    }
    expect(seen.counts).toMatchObject({ done: 3, total: 3 });
    const end = await events.next();
    expect(end?.event).toBe("end");
    expect(JSON.parse(end!.data)).toEqual({ reason: "done" });
    expect(await events.next()).toBeNull(); // the stream ends with the task
  });

  it("streams site-wide stats", async () => {
    const response = await t.fetcher("/api/stats/events", { method: "GET" });
    expect(response.status).toBe(200);
    const events = sseReader(response);
    const first = await events.next();
    expect(first?.event).toBe("stats");
    expect(JSON.parse(first!.data)).toHaveProperty("volunteersOnline");
    await events.cancel();
  });

  it("wakes a stream in another process at once through LISTEN/NOTIFY", async () => {
    // A second app on its own connections stands for a second API process; its feed's
    // safety poll is longer than the test may take, so only the notification can wake it.
    const second = backend === "postgres" ? createPostgresDb(t.testDb.url!, { max: 2 }) : null;
    const db = second?.db ?? t.db;
    const feed = await listeningFeed(db, 10 * 60_000);
    try {
      const app = createApp({ db, env: testEnv(), changes: feed });
      const task = (await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "notify", code, inputs: [1, 2], start: true } })).json.task;
      const response = await app.request(`/api/tasks/${task.id}/events`, { headers: { authorization: `Bearer ${creator.token}` } });
      const events = sseReader(response);
      expect(JSON.parse((await events.next())!.data).counts.done).toBe(0);
      const { token } = await t.volunteer();
      await work(token, 1);
      await notifyTaskChanged(t.db, [task.id]);
      expect(JSON.parse((await events.next())!.data).counts.done).toBe(1);
      await events.cancel();
    } finally {
      await feed.close();
      await second?.close();
    }
  });
});
