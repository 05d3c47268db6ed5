import type { ChunkOutcome } from "@crowdcompute/sandbox";
import { describe, expect, it } from "vitest";
import { approximateBytes, reportsForPart as reportsWithTexts } from "./block-reports.ts";

/** The part's reports as the server reads them: each result text parsed, as `results`. */
const reportsForPart = (...args: Parameters<typeof reportsWithTexts>) => {
  const part = reportsWithTexts(...args);
  return { ...part, reports: part.reports.map(({ resultTexts, ...report }) => ({ ...report, results: resultTexts.map((text) => JSON.parse(text) as unknown) })) };
};

const ok = (value: unknown, cpuMs = 1, lines?: string[]): ChunkOutcome => ({
  key: "k",
  ok: true,
  resultJson: JSON.stringify(value),
  cpuMs,
  ...(lines ? { console: { lines: lines.map((text) => ({ level: "log" as const, text })), truncated: false } } : {}),
});
const failed = (kind: "throw" | "timeout" | "cancelled", message: string = kind): ChunkOutcome => ({ key: "k", ok: false, error: { kind, message }, cpuMs: 2 });

describe("a part's outcomes as block reports", () => {
  it("one report per run of consecutive results, positional from its offset", () => {
    const part = reportsForPart("L", [ok("a"), ok("b"), ok("d", 3)], [0, 1, 3]);
    expect(part.reports).toEqual([
      { leaseId: "L", offset: 0, results: ["a", "b"], cpuMs: 2 },
      { leaseId: "L", offset: 3, results: ["d"], cpuMs: 3 },
    ]);
    expect([part.done, part.failed, part.cpuMs]).toEqual([3, 0, 5]);
  });

  it("errors ride with the first report, or with one of their own; cancelled chunks are not reported", () => {
    const mixed = reportsForPart("L", [failed("throw", "boom"), ok(7), failed("cancelled"), ok(9)], [4, 5, 6, 7]);
    expect(mixed.reports).toEqual([
      { leaseId: "L", offset: 5, results: [7], cpuMs: 1, errors: [{ offset: 4, kind: "throw", message: "boom" }] },
      { leaseId: "L", offset: 7, results: [9], cpuMs: 1 },
    ]);
    expect([mixed.done, mixed.failed, mixed.cpuMs]).toEqual([2, 1, 6]);
    const onlyErrors = reportsForPart("L", [failed("timeout")], [2]);
    expect(onlyErrors.reports).toEqual([{ leaseId: "L", results: [], errors: [{ offset: 2, kind: "timeout", message: "timeout" }], cpuMs: 0 }]);
    expect(reportsForPart("L", [failed("cancelled")], [0]).reports).toEqual([]);
  });

  it("a chunk's console rides with its result; a failed chunk's with the errors", () => {
    const withLog: ChunkOutcome = { ...failed("throw", "bad"), console: { lines: [{ level: "error", text: "why" }], truncated: true } };
    const { reports } = reportsForPart("L", [ok(1, 1, ["one"]), ok(2), withLog], [0, 1, 2]);
    expect(reports).toEqual([
      {
        leaseId: "L",
        offset: 0,
        results: [1, 2],
        cpuMs: 2,
        errors: [{ offset: 2, kind: "throw", message: "bad" }],
        console: [
          { offset: 0, lines: [{ level: "log", text: "one" }] },
          { offset: 2, lines: [{ level: "error", text: "why" }], truncated: true },
        ],
      },
    ]);
  });

  it("results go on as the sandbox's JSON text, never parsed and written again; a post is sized by those texts", () => {
    const text = '{ "b": 1, "a": "\\u00e9" }';
    const outcome: ChunkOutcome = { key: "k", ok: true, resultJson: text, cpuMs: 1 };
    const [report] = reportsWithTexts("L", [outcome, ok([1, 2])], [0, 1]).reports;
    expect(report!.resultTexts).toEqual([text, "[1,2]"]);
    expect(approximateBytes(report!)).toBeGreaterThanOrEqual(JSON.stringify({ leaseId: "L", offset: 0, results: [JSON.parse(text), [1, 2]], cpuMs: 2 }).length);
  });
});
