// The Node entry over real HTTP, driven by the SDK's methods for API keys, stats, the
// leaderboard and live progress: its LISTEN feed and its per-address limits included.
import { openTestDb, type TestDb, testBackends } from "@crowdcompute/db/testing";
import { ApiError, blockReports, chunksOfLeases, createClient, type Task } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/node/server.ts";
import { testEnv } from "./harness.ts";

describe.each(testBackends())("the SDK against the Node server on %s", (backend) => {
  let testDb: TestDb;
  let server: RunningServer;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    server = await startServer({
      db: testDb.handle.db,
      env: testEnv({ port: 0, embedded: backend === "pglite", limits: { loginPerAccount: 10, loginPerIp: 50, registerPerIp: 10, mintPerHour: 3, mintPerDay: 3, mintPerAccountPerDay: 10 } }),
      webDist: "/nonexistent",
    });
  });
  afterAll(async () => {
    await server?.close();
    await testDb?.dispose();
  });

  it("mints, uses, lists and revokes API keys; follows a task live; reads stats and the leaderboard", async () => {
    const anonymous = createClient({ baseUrl: server.url });
    const session = anonymous.withToken((await anonymous.register("sdk-live@example.com", "a long password")).token);
    const { key, apiKey } = await session.createApiKey("script");
    const script = anonymous.withToken(key);
    const task = await script.createTask({ name: "live", code: "export default (x) => x", inputs: [1, 2, 3, 4], start: true });
    expect((await session.listApiKeys()).map((k) => k.id)).toEqual([apiKey.id]);

    const seen: Task[] = [];
    const following = (async () => {
      for await (const update of script.taskEvents(task.id)) seen.push(update);
    })();
    const volunteer = anonymous.withToken((await session.createVolunteer("sdk volunteer")).token);
    for (let i = 0; i < 2; i++) {
      // One thread of a task not yet measured: two chunks.
      const { leases } = await volunteer.lease({ max: 2, capabilities: { threads: 1 } });
      const chunks = chunksOfLeases(leases);
      expect(chunks.map((c) => c.index)).toEqual([2 * i, 2 * i + 1]);
      // Counted CPU time is at most what the server saw pass since the lease: date it back
      // a minute, so that the claimed 5 ms a chunk is what the leaderboard counts.
      await testDb.handle.db.execute(sql`UPDATE leases SET created_at = created_at - interval '1 minute' WHERE task_id = ${task.id}`);
      const posted = await volunteer.submitResults(blockReports(chunks.map((chunk) => ({ chunk, result: chunk.input, cpuMs: 5 }))));
      expect(posted).toEqual({ accepted: 2, rejected: [] });
    }
    await following; // returns once the task is done
    expect(seen[0]!.counts.done).toBe(0);
    expect(seen.at(-1)).toMatchObject({ status: "done", counts: { done: 4 } });

    const { ticket } = await session.streamTicket();
    expect(ticket.split(".")).toHaveLength(3);
    const stats = await anonymous.stats();
    expect(stats.chunks.done).toBe(4);
    expect(stats.tasks.done).toBe(1);
    const board = await anonymous.leaderboard(5);
    expect(board[0]).toMatchObject({ kind: "user", chunksDone: 4, cpuMs: 20 });

    await session.revokeApiKey(apiKey.id);
    const revoked = await script.getTask(task.id).catch((error: unknown) => error);
    expect(revoked).toBeInstanceOf(ApiError);
    expect((revoked as ApiError).status).toBe(401);
  });

  it("limits volunteer identities per client address, from the socket", async () => {
    const anonymous = createClient({ baseUrl: `http://127.0.0.1:${server.port}` });
    const made: number[] = [];
    let refused: ApiError | null = null;
    for (let i = 0; i < 5 && !refused; i++) {
      try {
        await anonymous.createVolunteer();
        made.push(i);
      } catch (error) {
        refused = error as ApiError;
      }
    }
    // The test before minted its volunteer signed in: counted for its account, not this address.
    expect(made.length).toBe(3);
    expect(refused?.status).toBe(429);
  });
});
