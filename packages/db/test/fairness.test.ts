import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTask, createUser, createVolunteer } from "../src/index.ts";
import type { NewTask } from "../src/tasks/tasks.ts";
import { leaseChunks, leaseRequest, openTestDb, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())("fair scheduling on %s", (backend) => {
  let testDb: TestDb;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(async () => testDb?.dispose());

  const task = (ownerId: string, name: string, overrides: Partial<NewTask> = {}) =>
    createTask(db(), taskFixture(ownerId, { name, inputs: { kind: "array", items: Array.from({ length: 100 }, (_, i) => i) }, ...overrides }));
  const creator = async (email: string) => (await createUser(db(), { email, passwordHash: "x", firstIsAdmin: false }))!.id;

  it("serves creators in turn and a creator's tasks by priority", async () => {
    const [alice, bob] = [await creator("alice@example.com"), await creator("bob@example.com")];
    // Alice's low-priority task is older: still, her high-priority one goes first.
    const aliceLow = await task(alice, "alice-low", { priority: 0 });
    const aliceHigh = await task(alice, "alice-high", { priority: 5 });
    const bobTask = await task(bob, "bob");
    const volunteerId = (await createVolunteer(db(), { name: "v", userId: null })).id;
    const served: string[] = [];
    for (let turn = 0; turn < 6; turn++) {
      const chunks = await leaseChunks(db(), leaseRequest(volunteerId, { max: 2 }));
      served.push(...new Set(chunks.map((c) => c.taskId)));
      await sleep(120);
    }
    const names = new Map([
      [aliceLow, "alice-low"],
      [aliceHigh, "alice-high"],
      [bobTask, "bob"],
    ]);
    const order = served.map((id) => names.get(id));
    expect(order).not.toContain("alice-low");
    // Strict alternation between the two creators.
    for (let i = 1; i < order.length; i++) expect(order[i] === "bob").toBe(order[i - 1] !== "bob");
  });

  it("skips tasks the volunteer may not run: allow-lists, WebGPU, exclusions", async () => {
    await db().execute(sql`UPDATE tasks SET status = 'paused' WHERE status = 'running'`);
    const owner = await creator("carol@example.com");
    const insider = await creator("insider@example.com");
    const gpu = await task(owner, "gpu", { requires: { webgpu: true } });
    const privateTask = await task(owner, "private", { allowUsers: [insider] });
    const open = await task(owner, "open");
    const volunteerId = (await createVolunteer(db(), { name: "v", userId: null })).id;
    const lease = async (userId: string | null, webgpu: boolean, excludeTasks: string[] = []) =>
      new Set((await leaseChunks(db(), { volunteerId, userId, max: 300, threads: 1, webgpu, excludeTasks, excludeCreators: [], graceMs: 30_000 })).map((c) => c.taskId));
    expect(await lease(null, false, [open])).toEqual(new Set());
    expect(await lease(null, false)).toEqual(new Set([open]));
    expect(await lease(insider, true)).toEqual(new Set([gpu, privateTask]));
  });
});
