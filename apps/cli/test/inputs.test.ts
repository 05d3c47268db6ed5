// The input helpers on their own: range parsing and derivation, and how files are read.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "../src/errors.ts";
import { inlineLimits, ndjsonParts, parseRange, prepareInputs, rangeChunk, rangeChunkCount, readInputsFile } from "../src/inputs.ts";
import { removeTempDirs, tempDir } from "./helpers.ts";

afterAll(() => removeTempDirs());

describe("--range", () => {
  it("parses start:end:step:size and derives chunks as the server does, the last one clipped", () => {
    const range = parseRange("-5:100:3:10");
    expect(range).toEqual({ start: -5, end: 100, step: 3, size: 10 });
    expect(rangeChunkCount(range)).toBe(4);
    // Exponent notation is handy for big sweeps.
    expect(parseRange("0:1e7:1:1e5")).toEqual({ start: 0, end: 10_000_000, step: 1, size: 100_000 });
    expect([0, 1, 2, 3].map((i) => rangeChunk(range, i))).toEqual([
      { start: -5, end: 25, step: 3 },
      { start: 25, end: 55, step: 3 },
      { start: 55, end: 85, step: 3 },
      { start: 85, end: 100, step: 3 },
    ]);
  });

  it.each([
    ["1:2", /expected start:end:step:size/],
    ["0:10:1:", /size must be an integer/],
    ["0:1.5:1:5", /end must be an integer, got "1.5"/],
    ["0:9007199254740993:1:5", /end must be an integer/],
    ["0:10:0:5", /step must be positive/],
    ["0:10:1:-1", /size must be positive/],
    ["10:10:1:1", /end \(10\) must be greater than start \(10\)/],
  ])("refuses %s", (text, message) => {
    expect(() => parseRange(text)).toThrow(UsageError);
    expect(() => parseRange(text)).toThrow(message);
  });
});

describe("--inputs files", () => {
  const dir = tempDir("inputs-unit");
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("reads a JSON array, NDJSON with blank and CRLF lines, and sniffs an extensionless file", async () => {
    expect(await readInputsFile(file("a.json", '[1, {"x": 2}, null]'))).toEqual([1, { x: 2 }, null]);
    expect(await readInputsFile(file("b.ndjson", '1\r\n\r\n{"x": 2}\r\n"three"\n'))).toEqual([1, { x: 2 }, "three"]);
    expect(await readInputsFile(file("c", "  [1, 2]"))).toEqual([1, 2]);
    expect(await readInputsFile(file("d", "1\n2\n"))).toEqual([1, 2]);
  });

  it("reads only as far as a limit needs, so a bad line past it goes unread", async () => {
    const path = file("e.ndjson", "1\n2\n3\nnot json\n");
    expect(await readInputsFile(path, 2)).toEqual([1, 2]);
    await expect(readInputsFile(path)).rejects.toThrow(/e\.ndjson:4: not a JSON value/);
  });

  it("refuses empty files and files that are not there", async () => {
    await expect(readInputsFile(file("empty.ndjson", "\n\n"))).rejects.toThrow(/holds no inputs/);
    await expect(prepareInputs(file("empty.json", "[]"))).rejects.toThrow(/holds no inputs/);
    await expect(prepareInputs(join(dir, "nope.ndjson"))).rejects.toThrow(/cannot read .*nope\.ndjson \(ENOENT\)/);
    await expect(prepareInputs(dir)).rejects.toThrow(/is not a file/);
  });

  it("sends small NDJSON inline and large NDJSON as an upload, and splits it into bounded parts", async () => {
    expect(await prepareInputs(file("small.ndjson", "1\n2\n"))).toEqual({ kind: "array", items: [1, 2] });
    const count = inlineLimits.inputs + 1;
    const big = file("big.ndjson", Array.from({ length: count }, (_, i) => String(i)).join("\n"));
    expect(await prepareInputs(big)).toEqual({ kind: "ndjson", path: big, count });
    const parts: string[][] = [];
    for await (const part of ndjsonParts(big, 100_000)) parts.push(part);
    expect(parts.flat()).toEqual(Array.from({ length: count }, (_, i) => String(i)));
    expect(parts.every((part) => part.join("\n").length + 1 <= 100_000)).toBe(true);
    expect(parts.length).toBeGreaterThan(5);
  });
});
