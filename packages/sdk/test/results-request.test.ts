// Results as JSON text (the sandbox's) go into the request as they are, and the request is
// what JSON.stringify would have written for the same results as values.
import { describe, expect, it } from "vitest";
import { resultsRequestJson } from "../src/blocks.ts";

describe("resultsRequestJson", () => {
  const values = [1, "two", { three: [3, null] }, [], 'quote " and \\'];
  const texts = values.map((value) => JSON.stringify(value));

  it("splices result texts into the body, which parses to the same request as values", () => {
    const next = { max: 8, capabilities: { threads: 2 } };
    const spliced = resultsRequestJson(
      [
        { leaseId: "L1", offset: 2, resultTexts: texts, cpuMs: 7, console: [{ offset: 2, lines: [{ level: "log", text: "hi" }] }] },
        { leaseId: "L2", results: [], errors: [{ offset: 0, kind: "throw", message: "boom" }] },
      ],
      next,
    );
    expect(JSON.parse(spliced)).toEqual({
      results: [
        { leaseId: "L1", offset: 2, results: values, cpuMs: 7, console: [{ offset: 2, lines: [{ level: "log", text: "hi" }] }] },
        { leaseId: "L2", results: [], errors: [{ offset: 0, kind: "throw", message: "boom" }] },
      ],
      next,
    });
    expect(spliced).toContain(`"results":[${texts.join(",")}]`);
  });

  it("writes reports of values as JSON.stringify does, with no `next` when none is given", () => {
    const reports = [{ leaseId: "L", results: values, cpuMs: 1 }];
    expect(resultsRequestJson(reports)).toBe(JSON.stringify({ results: reports }));
    expect(JSON.parse(resultsRequestJson([{ leaseId: "L", resultTexts: [] }]))).toEqual({ results: [{ leaseId: "L", results: [] }] });
  });
});
