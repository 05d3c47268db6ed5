// A herd of waiting lease requests (docs/architecture.md, "Dispatch", waiting volunteers): past
// LEASE_ARRIVING_MAX leasing as they arrive, a request is held before it leases and leases in
// turn, oldest first; a wake-up passes it by until then.
import { describe, expect, it } from "vitest";
import { createWorkWaiters, type WaitEnd, type WaitRequest } from "../src/lib/work-waiters.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** A request whose first lease and attempts the test finishes by hand. */
function arrival(name: string) {
  const ends: WaitEnd<string>[] = [];
  const firsts: ((answer: string | null | Error) => void)[] = [];
  let attempts = 0;
  const request: WaitRequest<string> = {
    volunteerId: name,
    source: null,
    excluded: new Set(),
    ms: 20_000,
    first: () => new Promise<string | null>((resolve, reject) => firsts.push((answer) => (answer instanceof Error ? reject(answer) : resolve(answer)))),
    attempt: async () => {
      attempts++;
      return null;
    },
    end: (how) => void ends.push(how),
    unclaimed: () => {},
  };
  return { request, ends, firsts, attempts: () => attempts };
}

describe("arriving lease requests", () => {
  it("lease at most arrivingMax at once, the handlers' own leases counted, oldest first as places free", async () => {
    const waiters = createWorkWaiters({ perSource: 10, total: 10, arrivingMax: 2 });
    const inline = waiters.arrive();
    expect(inline).not.toBeNull();
    const [a, b, c] = [arrival("a"), arrival("b"), arrival("c")];
    for (const x of [a, b, c]) waiters.holdArriving(x.request);
    await tick();
    expect([a.firsts.length, b.firsts.length, c.firsts.length]).toEqual([1, 0, 0]);
    expect(waiters.arrive()).toBeNull();
    expect(waiters.size).toBe(3);

    // The handler's lease ends: b's turn. a's lease finds nothing: it waits on, and c leases.
    inline!();
    inline!(); // a second call gives back nothing more
    await tick();
    expect([a.firsts.length, b.firsts.length, c.firsts.length]).toEqual([1, 1, 0]);
    a.firsts[0]!(null);
    await tick();
    expect(c.firsts).toHaveLength(1);
    expect(a.ends).toEqual([]);

    // An answer (work, or a bound) ends the wait; a throw ends it with no work.
    b.firsts[0]!("blocks");
    c.firsts[0]!(new Error("pool gone"));
    await tick();
    expect(b.ends).toEqual([{ answer: "blocks" }]);
    expect(c.ends).toEqual([{ answer: null, why: "failed" }]);
    expect(waiters.size).toBe(1);
    // Both places are free again.
    const [one, two] = [waiters.arrive(), waiters.arrive()];
    expect(one && two).toBeTruthy();
    expect(waiters.arrive()).toBeNull();
    await waiters.close();
    expect(a.ends).toEqual([{ answer: null, why: "closed" }]);
  });

  it("pass by a request before its first lease on a wake-up, and never lease for one whose wait ended before its turn", async () => {
    const waiters = createWorkWaiters({ perSource: 10, total: 10, arrivingMax: 1 });
    const [a, b, c] = [arrival("a"), arrival("b"), arrival("c")];
    for (const x of [a, b, c]) waiters.holdArriving(x.request);
    waiters.wake(["*"]);
    await tick();
    expect([a.attempts(), b.attempts(), c.attempts()]).toEqual([0, 0, 0]);

    expect(waiters.arriving).toBe(3);
    waiters.leave(b.request);
    expect(b.ends).toEqual([{ answer: null, why: "gone" }]);
    // Nothing of it is kept for its turn.
    expect(waiters.arriving).toBe(2);
    a.firsts[0]!(null);
    await tick();
    expect(b.firsts).toHaveLength(0);
    expect(c.firsts).toHaveLength(1);
    // a leased once and waits: a wake-up tries it now, and still passes c by.
    waiters.wake(["*"]);
    await tick();
    expect([a.attempts(), c.attempts()]).toEqual([1, 0]);
    await waiters.close();
    expect(c.ends).toEqual([{ answer: null, why: "closed" }]);
  });

  it("answers an arrival past the source's cap at once, and lets no refused request take a place", async () => {
    const waiters = createWorkWaiters({ perSource: 1, total: 10, arrivingMax: 1 });
    const held = waiters.arrive();
    const b = arrival("b");
    Object.assign(b.request, { source: "10.0.0.1" });
    waiters.holdArriving(b.request);
    const refused = arrival("r");
    Object.assign(refused.request, { source: "10.0.0.1" });
    waiters.holdArriving(refused.request);
    expect(refused.ends).toEqual([{ answer: null, why: "refused" }]);
    held!();
    await tick();
    expect(b.firsts).toHaveLength(1);
    expect(refused.firsts).toHaveLength(0);
    await waiters.close();
  });
});
