import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../src/db.ts";
import type { LeaseRequest } from "../src/dispatch/lease-types.ts";
import { createTask, createUser, createVolunteer } from "../src/index.ts";
import { leaseChunks, leaseRequest, openTestDb, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("lease deadlines on %s", (backend) => {
  let testDb: TestDb;
  let volunteerId: string;
  const db = () => testDb.handle.db;
  const dbNow = async () => new Date((await queryRows<{ now: Date | string }>(db(), sql`SELECT now() AS now`))[0]!.now).getTime();

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    const owner = await createUser(db(), { email: "deadline@example.com", passwordHash: "x", firstIsAdmin: true });
    await createTask(db(), taskFixture(owner!.id, { timeoutMs: 1000, inputs: { kind: "array", items: Array.from({ length: 100 }, (_, i) => i) } }));
    volunteerId = (await createVolunteer(db(), { name: "v", userId: null })).id;
  });
  afterAll(async () => testDb?.dispose());

  /** Leases a batch and checks its deadline lies `expectedMs` past the database's clock (within the time the lease took). */
  const expectDeadline = async (overrides: Partial<LeaseRequest>, expectedMs: number) => {
    const before = await dbNow();
    const chunks = await leaseChunks(db(), leaseRequest(volunteerId, { graceMs: 500, ...overrides }));
    const after = await dbNow();
    expect(chunks).toHaveLength(overrides.max ?? 64);
    const deadline = chunks[0]!.deadline.getTime();
    expect(chunks.every((chunk) => chunk.deadline.getTime() === deadline)).toBe(true);
    // Postgres keeps microseconds; the Date, milliseconds.
    expect(deadline - after).toBeLessThanOrEqual(expectedMs + 1);
    expect(deadline - before).toBeGreaterThanOrEqual(expectedMs - 1);
  };

  it("gives a batch timeoutMs · ⌈n / threads⌉ + grace, stretched by 100 / cpuPercent for a throttled volunteer", async () => {
    // 5 chunks on 2 threads: 3 rounds of 1000 ms, at full speed by default.
    await expectDeadline({ max: 5, threads: 2 }, 3500);
    await expectDeadline({ max: 5, threads: 2, cpuPercent: 100 }, 3500);
    // Half the CPU: each round takes twice as long; a tenth: ten times.
    await expectDeadline({ max: 5, threads: 2, cpuPercent: 50 }, 6500);
    await expectDeadline({ max: 4, threads: 1, cpuPercent: 10 }, 40_500);
    // 1000 · 1 · 100 / 30 = 3333.3… ms.
    await expectDeadline({ max: 1, threads: 1, cpuPercent: 30 }, 3833);
  });
});
