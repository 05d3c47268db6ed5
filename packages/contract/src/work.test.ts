// The work schemas' own rules, beyond field types: what a block report may say, and what the
// defaults of a lease request are (the API documents them from here).
import { describe, expect, it } from "vitest";
import { DEFAULT_BUFFER_MS, MAX_BLOCK_CHUNKS, MAX_CONSOLE_CHARS, MAX_HEARTBEAT_CHECKPOINTS, MAX_HEARTBEAT_PROGRESS, MAX_LEASE_CHUNKS } from "./limits.ts";
import { blockReportSchema, heartbeatRequestSchema, leaseRequestSchema, resultsRequestSchema } from "./work.ts";

describe("the work schemas", () => {
  it("give a lease request the defaults a volunteer page relies on", () => {
    expect(leaseRequestSchema.parse({})).toEqual({
      max: MAX_LEASE_CHUNKS,
      bufferMs: DEFAULT_BUFFER_MS,
      capabilities: { webgpu: false, threads: 1, cpuPercent: 100 },
      exclude: { tasks: [], creators: [] },
    });
    expect(leaseRequestSchema.safeParse({ max: MAX_LEASE_CHUNKS + 1 }).success).toBe(false);
    expect(leaseRequestSchema.safeParse({ bufferMs: -1 }).success).toBe(false);
    expect(leaseRequestSchema.safeParse({ surprise: 1 }).success).toBe(false);
  });

  it("take a block report of results, errors or both, within a block", () => {
    expect(blockReportSchema.parse({ leaseId: "x", results: [1, { a: [2] }, null] })).toEqual({ leaseId: "x", offset: 0, results: [1, { a: [2] }, null], errors: [], cpuMs: 0 });
    expect(blockReportSchema.safeParse({ leaseId: "x", errors: [{ offset: 3, kind: "timeout", message: "slow" }] }).success).toBe(true);
    // Nothing reported, past the end of the largest block, a kind no volunteer may claim.
    expect(blockReportSchema.safeParse({ leaseId: "x" }).success).toBe(false);
    expect(blockReportSchema.safeParse({ leaseId: "x", offset: MAX_BLOCK_CHUNKS - 1, results: [1, 2] }).success).toBe(false);
    expect(blockReportSchema.safeParse({ leaseId: "x", errors: [{ offset: 0, kind: "cancelled", message: "" }] }).success).toBe(false);
    expect(blockReportSchema.safeParse({ leaseId: "x", results: [1], result: 1 }).success).toBe(false);
    expect(resultsRequestSchema.safeParse({ results: [] }).success).toBe(false);
  });

  it("take a chunk's console with a report, within its bounds", () => {
    const line = (text: string) => ({ level: "log", text });
    const report = (console: unknown) => blockReportSchema.safeParse({ leaseId: "x", results: [1], console });
    expect(report([{ offset: 0, lines: [line("hi"), { level: "error", text: "no" }], truncated: true }]).success).toBe(true);
    // Absent when no chunk logged: the output has no console key.
    expect("console" in blockReportSchema.parse({ leaseId: "x", results: [1] })).toBe(false);
    expect(report([{ offset: 0, lines: Array.from({ length: 101 }, () => line("x")) }]).success).toBe(false);
    expect(report([{ offset: 0, lines: [line("x".repeat(MAX_CONSOLE_CHARS)), line("y")] }]).success).toBe(false);
    expect(report([{ offset: 0, lines: [{ level: "shout", text: "x" }] }]).success).toBe(false);
  });

  it("take progress and checkpoints on a heartbeat, by lease id, bounded in count", () => {
    expect(heartbeatRequestSchema.safeParse({ leaseIds: ["a"], progress: { a: [{ offset: 0, fraction: 0.5, message: "half" }] }, checkpoints: { a: [{ offset: 0, state: { i: 1 } }] } }).success).toBe(
      true,
    );
    expect(heartbeatRequestSchema.safeParse({ leaseIds: ["a"], progress: { a: [{ offset: 0, fraction: 1.5 }] } }).success).toBe(false);
    expect(heartbeatRequestSchema.safeParse({ leaseIds: ["a"], progress: { a: 0.5 } }).success).toBe(false);
    const many = (n: number) => Array.from({ length: n }, (_, offset) => ({ offset, fraction: 0 }));
    expect(heartbeatRequestSchema.safeParse({ leaseIds: ["a", "b"], progress: { a: many(MAX_HEARTBEAT_PROGRESS / 2), b: many(MAX_HEARTBEAT_PROGRESS / 2) } }).success).toBe(true);
    expect(heartbeatRequestSchema.safeParse({ leaseIds: ["a", "b"], progress: { a: many(MAX_HEARTBEAT_PROGRESS / 2), b: many(MAX_HEARTBEAT_PROGRESS / 2 + 1) } }).success).toBe(false);
    const states = (n: number) => Array.from({ length: n }, (_, offset) => ({ offset, state: offset }));
    expect(heartbeatRequestSchema.safeParse({ leaseIds: ["a", "b"], checkpoints: { a: states(1), b: states(MAX_HEARTBEAT_CHECKPOINTS) } }).success).toBe(false);
  });
});
