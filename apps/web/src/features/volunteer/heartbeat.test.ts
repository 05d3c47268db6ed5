import type { Client, LeasedBlock } from "@crowdcompute/sdk";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Heartbeat } from "./heartbeat.ts";

/** A client whose beats are recorded (with the time they were sent) and answered at once. */
function beatingClient() {
  const beats: { at: number; leaseIds: string[]; extra: unknown }[] = [];
  const client = {
    heartbeat: async (leaseIds: string[], extra: unknown) => {
      beats.push({ at: Date.now(), leaseIds, extra });
      return { extended: leaseIds, lost: [], cancelled: [] };
    },
  } as unknown as Client;
  return { client, beats };
}

const block = { leaseId: "A", timeoutMs: 90_000 } as LeasedBlock;

describe("the page's heartbeat (docs/architecture.md, Dispatch)", () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it("beats every 3 s while blocks are held, whatever the chunks' timeout, and not when none are", async () => {
    const { client, beats } = beatingClient();
    let held: LeasedBlock[] = [block];
    const heartbeat = new Heartbeat(
      () => held,
      () => undefined,
    );
    heartbeat.keep(client);
    await vi.advanceTimersByTimeAsync(9_500);
    expect(beats.map((b) => b.at)).toEqual([3_000, 6_000, 9_000]);
    held = [];
    heartbeat.keep(client);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(beats).toHaveLength(3);
    // Blocks in hand again, long after the last beat: the first beat 3 s later, not at once.
    held = [block];
    heartbeat.keep(client);
    await vi.advanceTimersByTimeAsync(3_500);
    expect(beats.map((b) => b.at)).toEqual([3_000, 6_000, 9_000, 22_500]);
    heartbeat.end();
  });

  it("sends what a chunk reports within a second of the last beat, at most one beat a second", async () => {
    const { client, beats } = beatingClient();
    const heartbeat = new Heartbeat(
      () => [block],
      () => undefined,
    );
    heartbeat.keep(client);
    await vi.advanceTimersByTimeAsync(3_200);
    expect(beats.map((b) => b.at)).toEqual([3_000]);
    // Reports 4 times a second: one beat a second carries the latest.
    for (let k = 1; k <= 8; k++) {
      heartbeat.sinceLastBeat.progressed("A", 0, { fraction: k / 10 });
      await vi.advanceTimersByTimeAsync(250);
    }
    expect(beats.map((b) => b.at)).toEqual([3_000, 4_000, 5_000]);
    expect(beats[1]!.extra).toEqual({ progress: { A: [{ offset: 0, fraction: 0.4 }] } });
    expect(beats[2]!.extra).toEqual({ progress: { A: [{ offset: 0, fraction: 0.8 }] } });
    // Nothing new: the regular 3 s again.
    await vi.advanceTimersByTimeAsync(3_000);
    expect(beats.map((b) => b.at)).toEqual([3_000, 4_000, 5_000, 8_000]);
    expect(beats[3]!.extra).toEqual({});
    heartbeat.end();
  });
});
