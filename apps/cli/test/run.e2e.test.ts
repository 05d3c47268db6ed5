// `crowdcompute run`: a dry run in local headless Chromium through the real sandbox, with
// output shaped like `results`, checked against computations done here.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { expectedLcg, fixtures, parseJsonLines, removeTempDirs, runCli, seeds, tempDir } from "./helpers.ts";

const work = join(fixtures, "lcg/work.js");

describe("crowdcompute run", () => {
  afterAll(() => removeTempDirs());

  it("computes every chunk in the sandbox and reports a failing one with exit 1", async () => {
    const inputs = seeds(40).map((input, i) => (i === 7 ? { ...input, fail: true } : { ...input, spinMs: 5 }));
    const file = join(tempDir("run"), "in.json");
    writeFileSync(file, JSON.stringify(inputs));
    const result = await runCli(["run", work, "--inputs", file, "--threads", "2"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("ran 40 of 40 chunks locally");
    expect(result.stderr).toContain("39 done, 1 failed");
    expect(result.stderr).toContain("error: 1 chunk(s) failed; first: chunk 7: throw: chunk 7 was asked to fail");
    expect(parseJsonLines(result.stdout)).toEqual(
      inputs.map((input, index) =>
        index === 7 ? { index, input, status: "failed", error: { kind: "throw", message: "chunk 7 was asked to fail" } } : { index, input, status: "done", result: expectedLcg(index, input.seed) },
      ),
    );
  });

  it("derives range chunks as the server does, honours --limit, writes CSV, and runs in the locked-down worker", async () => {
    const result = await runCli(["run", join(fixtures, "range-sum.js"), "--range", "10:1000:7:20", "--limit", "3", "--format", "csv"]);
    expect(result.stderr).toContain("ran 3 of 8 chunks locally");
    expect(result.code).toBe(0);
    const rows = result.stdout.split("\r\n").filter(Boolean);
    const sum = (start: number, end: number) => {
      let total = 0;
      for (let i = start; i < end; i += 7) total += i;
      return total;
    };
    expect(rows).toEqual([
      "index,status,input,result,error",
      ...[0, 1, 2].map((i) => {
        const start = 10 + i * 140;
        const input = `{""start"":${start},""end"":${start + 140},""step"":7}`;
        return `${i},done,"${input}","{""sum"":${sum(start, start + 140)},""indexedDB"":""undefined"",""worker"":""undefined""}",`;
      }),
    ]);
  });

  it("prints what each chunk wrote to its console on stderr, the results alone on stdout", async () => {
    const file = join(tempDir("chatty"), "in.json");
    writeFileSync(file, JSON.stringify([{ n: 0 }, { n: 1 }, { n: 2 }]));
    const result = await runCli(["run", join(fixtures, "chatty.js"), "--inputs", file, "--threads", "1"]);
    expect(result.code).toBe(0);
    expect(parseJsonLines(result.stdout)).toEqual([0, 1, 2].map((n) => ({ index: n, input: { n }, status: "done", result: n * 10 })));
    expect(result.stderr.split("\n").filter((line) => line.startsWith("[chunk "))).toEqual(["[chunk 0] input 0", "[chunk 1] input 1", "[chunk 1] warn: one is odd", "[chunk 2] input 2"]);
  });

  it("fails a chunk that runs past --timeout as a timeout", async () => {
    const file = join(tempDir("slow"), "in.ndjson");
    writeFileSync(file, `${JSON.stringify({ seed: 1, spinMs: 1 })}\n${JSON.stringify({ seed: 2, spinMs: 20_000 })}\n`);
    const result = await runCli(["run", work, "--inputs", file, "--timeout", "1000", "--threads", "1"]);
    expect(result.code).toBe(1);
    const lines = parseJsonLines(result.stdout) as { index: number; status: string; error?: { kind: string } }[];
    expect(lines[0]).toEqual({ index: 0, input: { seed: 1, spinMs: 1 }, status: "done", result: expectedLcg(0, 1) });
    expect(lines[1]).toMatchObject({ index: 1, status: "failed", error: { kind: "timeout" } });
  });

  it("fails a chunk over --memory as oom, as a volunteer's sandbox would", async () => {
    const dir = tempDir("memory");
    const allocate = join(dir, "allocate.js");
    writeFileSync(allocate, "export default (mib) => new Uint8Array(mib * 1024 * 1024).length;\n");
    const file = join(dir, "in.json");
    writeFileSync(file, JSON.stringify([16, 100]));
    const result = await runCli(["run", allocate, "--inputs", file, "--memory", "64", "--threads", "1"]);
    expect(result.code).toBe(1);
    const lines = parseJsonLines(result.stdout) as { index: number; status: string; result?: unknown; error?: { kind: string; message: string } }[];
    expect(lines[0]).toMatchObject({ index: 0, status: "done", result: 16 * 1024 * 1024 });
    expect(lines[1]).toMatchObject({ index: 1, status: "failed", error: { kind: "oom", message: expect.stringMatching(/memory budget of 64 MiB/) } });
  });
});
