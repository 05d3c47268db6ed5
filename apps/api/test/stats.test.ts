import { notifyTaskChanged } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases, type LeasedBlock } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/create-app.ts";
import { listeningFeed } from "../src/lib/live.ts";
import { openTestApp, type TestApp, testEnv } from "./harness.ts";
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

  /**
   * Leases up to `max` chunks for `token` (threads enough: a new task gives 2 chunks a
   * thread) and posts results per block (x·2, `cpuMs` each). The leases are dated back a
   * minute first: counted CPU time is at most what the server saw pass since the lease, and
   * these tests count the claimed time.
   */
  async function work(token: string, max: number, cpuMs = 10) {
    const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max, capabilities: { threads: Math.ceil(max / 2) } } })).json as { leases: LeasedBlock[] };
    expect(chunksOfLeases(leases)).toHaveLength(max);
    await t.db.execute(sql`UPDATE leases SET created_at = created_at - interval '1 minute'`);
    const results = leases.map((b) => ({ leaseId: b.leaseId, results: (b.inputs as number[]).map((x) => x * 2), cpuMs: cpuMs * b.inputs.length }));
    if (results.length > 0) expect((await t.call("POST", "/api/work/results", { token, body: { results } })).json).toEqual({ accepted: max, rejected: [] });
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
    // Credit is at most the claimed CPU time, and only what won a quorum earns it.
    expect(items.find((i) => i.kind === "user")!.credit).toBeLessThanOrEqual(60);
    expect(items.find((i) => i.kind === "volunteer")!.credit).toBeLessThanOrEqual(20);
    expect((await t.call("GET", "/api/leaderboard?limit=1")).json.items).toHaveLength(1);
    expect((await t.call("GET", "/api/leaderboard?limit=1000")).status).toBe(422);
    expect((await t.call("GET", "/api/stats?surprise=1")).status).toBe(422);
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE id = ${task.id}`);
  });

  it("shows contributors by the names they choose: a volunteer's own, or its account's display name", async () => {
    const alice = await t.volunteer();
    const rename = (token: string, name: string) => t.call("PATCH", "/api/volunteers/me", { token, body: { name } });
    expect((await rename(alice.token, "  ")).status).toBe(422);
    expect((await rename(creator.token, "not a volunteer")).status).toBe(403);
    expect((await rename(alice.token, "Alice's laptop")).json).toMatchObject({ name: "Alice's laptop", userId: null, shownAs: "Alice's laptop" });

    const bob = await t.volunteer(creator.token);
    expect((await t.call("GET", "/api/volunteers/me", { token: bob.token })).json).toMatchObject({ userId: creator.user.id, shownAs: "test volunteer" });
    expect((await t.call("PATCH", "/api/auth/me", { token: bob.token, body: { name: "Ada" } })).status).toBe(403);
    const renamed = await t.call("PATCH", "/api/auth/me", { token: creator.token, body: { name: "Ada Lovelace" } });
    expect(renamed.json.user).toMatchObject({ id: creator.user.id, name: "Ada Lovelace" });
    expect((await t.call("POST", "/api/auth/login", { body: { email: "stats@example.com", password: "correct horse" } })).json.user.name).toBe("Ada Lovelace");
    // The account's name stands for every one of its volunteers, whatever each is called.
    expect((await rename(bob.token, "Bob's desktop")).json).toMatchObject({ name: "Bob's desktop", shownAs: "Ada Lovelace" });

    const task = (await t.call("POST", "/api/tasks", { token: creator.token, body: { name: "named", code, inputs: [1, 2, 3, 4], start: true } })).json.task;
    await work(alice.token, 1);
    await work(bob.token, 2);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the 1 s cache
    const names = new Map((await t.call("GET", "/api/leaderboard")).json.items.map((i: { id: string; name: string }) => [i.id, i.name]));
    expect(names.get(creator.user.id)).toBe("Ada Lovelace");
    expect(names.get(alice.volunteer.id)).toBe("Alice's laptop");

    // The task's history, for its owner only: three chunks done, in buckets of seconds.
    const other = await t.register("history-stranger@example.com");
    expect((await t.call("GET", `/api/tasks/${task.id}/throughput`, { token: other.token })).status).toBe(403);
    const history = (await t.call("GET", `/api/tasks/${task.id}/throughput`, { token: creator.token })).json;
    expect(history.bucketSec).toBe(1);
    expect(history.points.reduce((sum: number, p: { done: number }) => sum + p.done, 0)).toBe(3);
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE id = ${task.id}`);
  });

  it("links a browser's anonymous volunteer to the account that signs in there: its credit counts for the account", async () => {
    const carol = await t.register("carol-links@example.com");
    const dave = await t.register("dave-links@example.com");
    const anonymous = await t.volunteer();
    const task = (await t.call("POST", "/api/tasks", { token: carol.token, body: { name: "linked", code, inputs: [1, 2], start: true } })).json.task;
    await work(anonymous.token, 1);
    const link = (token: string, body: unknown) => t.call("POST", "/api/volunteers/link", { token, body });

    // Refused, changing nothing: no account, not a volunteer token, a forged one, a bad body.
    expect((await link(anonymous.token, { token: anonymous.token })).status).toBe(403);
    expect((await link(carol.token, { token: dave.token })).status).toBe(422);
    expect((await link(carol.token, { token: `${anonymous.token.slice(0, -4)}AAAA` })).status).toBe(422);
    expect((await link(carol.token, { token: anonymous.token, extra: 1 })).status).toBe(422);
    expect((await link(carol.token, {})).status).toBe(422);
    expect((await t.call("GET", "/api/volunteers/me", { token: anonymous.token })).json.userId).toBeNull();

    const linked = await link(carol.token, { token: anonymous.token });
    expect(linked.status).toBe(200);
    expect(linked.json.volunteer).toMatchObject({ id: anonymous.volunteer.id, userId: carol.user.id });
    // The new token carries the account; the old one still works, for the same volunteer.
    expect((await t.call("GET", "/api/volunteers/me", { token: linked.json.token })).json).toMatchObject({ id: anonymous.volunteer.id, userId: carol.user.id, chunksDone: 1 });
    expect((await t.call("GET", "/api/volunteers/me", { token: anonymous.token })).json.userId).toBe(carol.user.id);
    // Again: nothing changes. Another account: refused, still Carol's.
    expect((await link(carol.token, { token: anonymous.token })).status).toBe(200);
    expect((await link(dave.token, { token: anonymous.token })).status).toBe(409);
    expect((await link(dave.token, { token: linked.json.token })).status).toBe(409);
    expect((await t.call("GET", "/api/volunteers/me", { token: anonymous.token })).json.userId).toBe(carol.user.id);

    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the 1 s cache
    const entries = (await t.call("GET", "/api/leaderboard")).json.items as { kind: string; id: string; chunksDone: number }[];
    expect(entries.find((e) => e.id === carol.user.id)).toMatchObject({ kind: "user", chunksDone: 1 });
    expect(entries.find((e) => e.id === anonymous.volunteer.id)).toBeUndefined();
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
