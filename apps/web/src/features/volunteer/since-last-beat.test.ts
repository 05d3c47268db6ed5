import { describe, expect, it } from "vitest";
import { SinceLastBeat } from "./since-last-beat.ts";

describe("what the next heartbeat carries", () => {
  it("the latest of each chunk of the leases held; leases no longer held say nothing more", () => {
    const since = new SinceLastBeat();
    since.progressed("A", 0, { fraction: 0.1 });
    since.progressed("A", 0, { fraction: 0.5, message: "half" });
    since.progressed("B", 1, { fraction: 0.2 });
    since.checkpointed("A", 0, '{"i":3}');
    const { extra } = since.take(["A"]);
    expect(extra).toEqual({ progress: { A: [{ offset: 0, fraction: 0.5, message: "half" }] }, checkpoints: { A: [{ offset: 0, state: { i: 3 } }] } });
    expect(since.take(["A", "B"]).extra).toEqual({});
  });

  it("chunks whose outcomes are in say nothing more", () => {
    const since = new SinceLastBeat();
    since.progressed("A", 0, { fraction: 0.5 });
    since.progressed("A", 1, { fraction: 0.5 });
    since.ended("A", [0]);
    expect(since.take(["A"]).extra).toEqual({ progress: { A: [{ offset: 1, fraction: 0.5 }] } });
  });

  it("a beat carries at most 1024 progress entries and 16 checkpoints; the rest waits for the next", () => {
    const since = new SinceLastBeat();
    for (let offset = 0; offset < 1500; offset++) since.progressed("A", offset, { fraction: 1 });
    for (let offset = 0; offset < 20; offset++) since.checkpointed("A", offset, String(offset));
    const first = since.take(["A"]).extra;
    expect([first.progress?.A?.length, first.checkpoints?.A?.length]).toEqual([1024, 16]);
    const second = since.take(["A"]).extra;
    expect([second.progress?.A?.length, second.checkpoints?.A?.length]).toEqual([476, 4]);
  });

  it("a failed beat puts back what it took, unless a chunk reported newer since", () => {
    const since = new SinceLastBeat();
    since.progressed("A", 0, { fraction: 0.2 });
    since.progressed("A", 1, { fraction: 0.3 });
    const { restore } = since.take(["A"]);
    since.progressed("A", 1, { fraction: 0.9 });
    restore();
    expect(since.take(["A"]).extra).toEqual({
      progress: {
        A: [
          { offset: 1, fraction: 0.9 },
          { offset: 0, fraction: 0.2 },
        ],
      },
    });
  });
});
