// A waiting lease request whose wait ends while one of its attempts is leasing (its client
// went, a newer request took its place): nobody receives those blocks, so they go back at once
// rather than when the volunteer's silence shows (docs/architecture.md, "Dispatch", waiting
// volunteers).
import { testBackends } from "@crowdcompute/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkWaiters, type WaitEnd, type WaitRequest, type WorkWaiters } from "../src/lib/work-waiters.ts";
import type { HeldLease } from "../src/routes/work/held-lease.ts";
import { openTestApp, type TestApp } from "./harness.ts";

describe("a wait that ends while its attempt leases", () => {
  it("ends the wait once and hands the attempt's answer to `unclaimed`", async () => {
    const waiters = createWorkWaiters({ perSource: 10, total: 10 });
    let finishAttempt!: (answer: string) => void;
    const ends: WaitEnd<string>[] = [];
    const unclaimed: string[] = [];
    const request: WaitRequest<string> = {
      volunteerId: "v1",
      source: null,
      excluded: new Set(),
      ms: 20_000,
      attempt: () => new Promise<string>((resolve) => (finishAttempt = resolve)),
      first: async () => null,
      end: (how) => void ends.push(how),
      unclaimed: (answer) => void unclaimed.push(answer),
    };
    waiters.hold(request);
    waiters.wake(["*"]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    // The client goes while the attempt runs: the wait ends at once, with no work.
    waiters.leave(request);
    expect(ends).toEqual([{ answer: null, why: "gone" }]);
    finishAttempt("blocks");
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(ends).toHaveLength(1);
    expect(unclaimed).toEqual(["blocks"]);
    expect(waiters.size).toBe(0);
    await waiters.close();
  });
});

describe.each(testBackends())("unclaimed blocks of a waiting request on %s", (backend) => {
  let t: TestApp & { waiters: WorkWaiters };
  let held: HeldLease | undefined;

  beforeAll(async () => {
    // Waiters that keep what they are given and never wake, so the test runs its attempt by hand.
    const capturing = createWorkWaiters({ perSource: 10, total: 10 });
    const { hold, holdArriving } = capturing;
    capturing.hold = (request) => {
      held = request as unknown as HeldLease;
      hold(request);
    };
    capturing.holdArriving = (request) => {
      held = request as unknown as HeldLease;
      holdArriving(request);
    };
    capturing.wake = () => {};
    t = { ...(await openTestApp(backend, {}, { waiters: capturing })), waiters: capturing };
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("go back to pending at once, and another volunteer leases them", async () => {
    const creator = (await t.register("unclaimed@example.com")).token;
    const v = await t.volunteer();
    const waiting = t.call("POST", "/api/work/lease", { token: v.token, body: { max: 4, waitMs: 20_000 } });
    while (!held) await new Promise((resolve) => setTimeout(resolve, 5));
    const task = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "u", code: "export default (x) => x", inputs: [1, 2, 3], start: true } })).json.task;
    const answer = (await held.attempt(0))!;
    const granted = (JSON.parse(`[${answer.leases}]`) as { taskId: string; inputs: number[] }[]).flatMap((block) => block.inputs);
    expect(granted.length).toBeGreaterThan(0);
    expect(answer.granted.every((block) => block.taskId === task.id)).toBe(true);
    // Its client goes before the answer is written: the wait ends with no work, and nobody
    // takes the blocks leased meanwhile.
    t.waiters.leave(held);
    expect((await waiting).json).toEqual({ leases: [], retryAfterMs: 2000 });
    held.unclaimed(answer);
    // Another volunteer gets them within a second (they would otherwise wait out the first
    // one's silence, leaseSilentMs: 15 s here).
    const other = await t.volunteer();
    const got: number[] = [];
    for (let i = 0; i < 50 && !granted.every((input) => got.includes(input)); i++) {
      const leased = await t.call("POST", "/api/work/lease", { token: other.token, body: { max: 4 } });
      got.push(...leased.json.leases.flatMap((l: { inputs: number[] }) => l.inputs));
      if (leased.json.leases.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(granted.filter((input) => !got.includes(input))).toEqual([]);
  });
});
