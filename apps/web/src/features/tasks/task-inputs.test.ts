import { describe, expect, it } from "vitest";
import { chunkCount, chunkInput, InputsError, parseArrayText, parseInputsFile, parseRange } from "./task-inputs.ts";
import { defaultOptions, parseOptions } from "./task-options.ts";

describe("task inputs as the form reads them", () => {
  it("takes a JSON array and names the line of a syntax error", () => {
    expect(parseArrayText('[1, {"a": 2}]')).toEqual({ kind: "array", values: [1, { a: 2 }] });
    expect(() => parseArrayText("[1,\n2,\n]")).toThrow("Not valid JSON: Unexpected ']' (line 3)");
    expect(() => parseArrayText('[1,\n"a]",\n2 3]')).toThrow("Not valid JSON: Expected ',' or ']' after array element (line 3 column 3)");
    expect(() => parseArrayText('["x\\"y", oops]')).toThrow("Not valid JSON: Unexpected 'o' (line 1)");
    expect(() => parseArrayText("{}")).toThrow("must be a JSON array");
    expect(() => parseArrayText("[]")).toThrow("at least one input");
    expect(() => parseArrayText("  ")).toThrow(InputsError);
  });

  it("reads a file as a JSON array or NDJSON, naming a bad line", () => {
    expect(parseInputsFile("in.json", "[1,2]")).toEqual({ kind: "array", values: [1, 2] });
    const ndjson = parseInputsFile("in.ndjson", '1\n\n{"x":2}\r\n"three"\n');
    expect(ndjson).toEqual({ kind: "ndjson", lines: ["1", '{"x":2}', '"three"'] });
    expect(chunkInput(ndjson, 1)).toEqual({ x: 2 });
    // An NDJSON file whose first value is an array stays NDJSON.
    expect(parseInputsFile("in.ndjson", "[1]\n[2]\n")).toEqual({ kind: "ndjson", lines: ["[1]", "[2]"] });
    expect(() => parseInputsFile("in.ndjson", "1\nnope\n")).toThrow("in.ndjson, line 2");
    expect(() => parseInputsFile("empty.ndjson", "\n\n")).toThrow("holds no inputs");
  });

  it("derives range chunks as the server does (end exclusive, last chunk short)", () => {
    const { range, errors } = parseRange({ start: "10", end: "35", step: "2", size: "5" });
    expect(errors).toEqual({});
    const source = { kind: "range" as const, range: range! };
    expect(chunkCount(source)).toBe(3);
    expect(chunkInput(source, 0)).toEqual({ start: 10, end: 20, step: 2 });
    expect(chunkInput(source, 2)).toEqual({ start: 30, end: 35, step: 2 });
    expect(parseRange({ start: "5", end: "5", step: "1", size: "1" }).errors).toEqual({ end: "End must be greater than start (it is exclusive)." });
    expect(parseRange({ start: "x", end: "1.5", step: "0", size: "" }).errors).toEqual({
      start: "Enter a whole number.",
      end: "Enter a whole number.",
      step: "Must be at least 1.",
      size: "Enter a whole number.",
    });
  });
});

describe("task options as the form reads them", () => {
  it("turns the defaults into the API's options", () => {
    const out: Record<string, string> = {};
    expect(parseOptions(defaultOptions, out)).toEqual({
      replication: 1,
      quorum: 1,
      timeoutMs: 60_000,
      memoryMb: 256,
      maxAttempts: 5,
      priority: 0,
      requires: { webgpu: false },
      tolerance: null,
      spotCheck: 1,
      allowUsers: null,
    });
    expect(out).toEqual({});
  });

  it("gives a message per bad field, with the server's bounds", () => {
    const out: Record<string, string> = {};
    const allowed = "01a21703-6975-77d9-af11-950bea5939d8";
    const parsed = parseOptions(
      {
        replication: "2",
        quorum: "3",
        timeoutSec: "0",
        memoryMb: "8",
        maxAttempts: "1.5",
        priority: "2000",
        webgpu: true,
        allowUsers: `${allowed}, bob`,
        toleranceAbs: "-1",
        toleranceRel: "x",
        spotCheck: "0",
      },
      out,
    );
    expect(out).toEqual({
      quorum: "Quorum can be at most the replication.",
      timeoutMs: "Between 0.1 and 3600 seconds.",
      memoryMb: "Between 16 and 4096.",
      maxAttempts: "Enter a whole number.",
      priority: "Between -1000 and 1000.",
      allowUsers: '"bob" is not a user id.',
      toleranceAbs: "Enter a number of 0 or more, or leave it empty.",
      toleranceRel: "Enter a number of 0 or more, or leave it empty.",
      spotCheck: "More than 0 and at most 1.",
    });
    expect(parsed.requires).toEqual({ webgpu: true });
  });

  it("sends a tolerance only when one of its bounds is given", () => {
    const out: Record<string, string> = {};
    expect(parseOptions({ ...defaultOptions, toleranceRel: " 1e-9 " }, out).tolerance).toEqual({ rel: 1e-9 });
    expect(parseOptions({ ...defaultOptions, toleranceAbs: "0.5", toleranceRel: "0" }, out).tolerance).toEqual({ abs: 0.5, rel: 0 });
    expect(out).toEqual({});
  });

  it("takes a spot check share in (0, 1]", () => {
    const out: Record<string, string> = {};
    expect(parseOptions({ ...defaultOptions, spotCheck: "0.1" }, out).spotCheck).toBe(0.1);
    expect(out).toEqual({});
    parseOptions({ ...defaultOptions, spotCheck: "1.5" }, out);
    expect(out).toEqual({ spotCheck: "More than 0 and at most 1." });
  });
});
