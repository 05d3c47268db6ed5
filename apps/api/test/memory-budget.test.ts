// A task's memory budget (docs/architecture.md, "The sandbox"): declared by the creator within
// bounds, shown with the task, and carried by every lease answer to the volunteer's sandbox.
import { leasedBlockSchema } from "@crowdcompute/contract";
import { testBackends } from "@crowdcompute/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

describe.each(testBackends())("task memory budget on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = (await t.register("creator@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const create = (body: Record<string, unknown>) => t.call("POST", "/api/tasks", { token: creator, body: { name: "budget", code: "export default (x) => x;", inputs: [1, 2], start: true, ...body } });

  it("defaults to 256 MiB, takes 16..4096, and reaches the volunteer with each block", async () => {
    const plain = await create({});
    expect(plain.status).toBe(201);
    expect(plain.json.task.memoryMb).toBe(256);

    for (const memoryMb of [8, 8192, 100.5]) {
      const refused = await create({ memoryMb });
      expect(refused.status, String(memoryMb)).toBe(422);
    }

    const big = await create({ memoryMb: 1024 });
    expect(big.status).toBe(201);
    const id = big.json.task.id as string;
    expect((await t.call("GET", `/api/tasks/${id}`, { token: creator })).json.task.memoryMb).toBe(1024);

    const volunteer = (await t.volunteer()).token;
    const leased = await t.call("POST", "/api/work/lease", { token: volunteer, body: { max: 8, capabilities: { threads: 2 } } });
    expect(leased.status).toBe(200);
    const blocks = (leased.json.leases as unknown[]).map((block) => leasedBlockSchema.parse(block));
    expect(new Map(blocks.map((block) => [block.taskId, block.memoryMb]))).toEqual(
      new Map([
        [plain.json.task.id as string, 256],
        [id, 1024],
      ]),
    );
  });

  it("keeps the budget in a clone unless the clone says another, within the same bounds", async () => {
    const source = (await create({ memoryMb: 512, start: false })).json.task;
    const clone = (changes: Record<string, unknown>) => t.call("POST", `/api/tasks/${source.id}/clone`, { token: creator, body: changes });
    expect((await clone({})).json.task.memoryMb).toBe(512);
    expect((await clone({ memoryMb: 2048 })).json.task).toMatchObject({ memoryMb: 2048, counts: { total: 2 } });
    for (const memoryMb of [8, 8192, 100.5, "512"]) expect((await clone({ memoryMb })).status, String(memoryMb)).toBe(422);
  });
});
