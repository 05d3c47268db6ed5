// The examples in examples/ stay runnable: each is dry-run through the real sandbox and its
// output checked against a computation done here, and the scripts the READMEs pipe results into
// run on the shell's own `node` (Node 20 here), as the READMEs write them.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseJsonLines, repoRoot, runCli, userShellEnv } from "./helpers.ts";

const examples = join(repoRoot, "examples");

describe("examples", () => {
  it("every `node FILE` the READMEs show starts on the shell's own node; scripts that need the project's Node are run with `npx --no node`", () => {
    const scripts = new Set<string>();
    for (const readme of ["README.md", "examples/README.md"]) {
      const text = readFileSync(join(repoRoot, readme), "utf8");
      for (const match of text.matchAll(/(npx --no )?\bnode (examples\/\S+?\.js)\b/g)) if (!match[1]) scripts.add(match[2]!);
    }
    expect([...scripts].sort()).toEqual(["examples/hash-search/verify.js", "examples/mandelbrot/assemble.js", "examples/webgpu-pi/verify.js"]);
    // The READMEs' `npx --no crowdcompute …` runs on the project's Node whatever the shell's is.
    const help = spawnSync("sh", ["-c", "npx --no crowdcompute help"], { cwd: repoRoot, env: userShellEnv(), encoding: "utf8" });
    expect({ status: help.status, stderr: help.stderr }).toEqual({ status: 0, stderr: "" });
    expect(help.stdout).toMatch(/^Usage: crowdcompute /);
    for (const script of scripts) {
      // No input: each script stops with its own complaint, or prints nothing found; what it must not do is fail to load.
      const run = spawnSync("sh", ["-c", `node ${script} < /dev/null`], { cwd: repoRoot, env: userShellEnv(), encoding: "utf8" });
      expect({ script, stderr: run.stderr }).not.toMatchObject({ stderr: expect.stringMatching(/ERR_UNKNOWN_FILE_EXTENSION|ERR_MODULE_NOT_FOUND|SyntaxError|ERR_REQUIRE_ESM/) });
    }
  });

  it("hash-search bundles @noble/hashes and finds exactly the nonces Node's sha256 finds", async () => {
    const result = await runCli(["run", join(examples, "hash-search/work.js"), "--range", "0:10000000:1:100000", "--limit", "2"]);
    expect(result.code).toBe(0);
    const lines = parseJsonLines(result.stdout) as { index: number; input: { start: number; end: number; step: number }; result: { hashed: number; hits: unknown[] } }[];
    expect(lines.map((line) => line.input)).toEqual([
      { start: 0, end: 100_000, step: 1 },
      { start: 100_000, end: 200_000, step: 1 },
    ]);
    for (const line of lines) {
      const hits = [];
      for (let n = line.input.start; n < line.input.end; n++) {
        const hash = createHash("sha256").update(`crowdcompute:${n}`).digest("hex");
        if (hash.startsWith("0000")) hits.push({ nonce: n, hash });
      }
      expect(line.result).toEqual({ hashed: 100_000, hits });
    }
    // The example's own checker agrees (it is what the README pipes results into).
    const verified = execFileSync("node", [join(examples, "hash-search/verify.js")], { input: result.stdout, encoding: "utf8", env: userShellEnv() });
    expect(verified).toMatch(/^2 chunks checked, \d+ hits, 0 wrong$/m);
    // As `crowdcompute results` gives them: the server keeps canonical JSON, keys sorted.
    const sortKeys = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(sortKeys)
        : value && typeof value === "object"
          ? Object.fromEntries(
              Object.entries(value)
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([k, v]) => [k, sortKeys(v)]),
            )
          : value;
    const canonical = lines.map((line) => JSON.stringify(sortKeys(line))).join("\n");
    expect(canonical).toContain('{"hash":');
    const fromServer = execFileSync("node", [join(examples, "hash-search/verify.js")], { input: canonical, encoding: "utf8", env: userShellEnv() });
    expect(fromServer).toMatch(/^2 chunks checked, \d+ hits, 0 wrong$/m);
  });

  it("mandelbrot computes its rows from inputs.ndjson and assembles an image", async () => {
    const inputsFile = join(examples, "mandelbrot/inputs.ndjson");
    const result = await runCli(["run", join(examples, "mandelbrot/work.js"), "--inputs", inputsFile, "--limit", "4"]);
    expect(result.code).toBe(0);
    const inputs = readFileSync(inputsFile, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { y: number; width: number; height: number; maxIter: number });
    const lines = parseJsonLines(result.stdout) as { index: number; result: number[] }[];
    expect(lines.length).toBe(4);
    for (const line of lines) {
      const { y, width, height, maxIter } = inputs[line.index]!;
      const ci = -1.2 + (2.4 * y) / (height - 1);
      const expected = Array.from({ length: width }, (_, x) => {
        const cr = -2.2 + (3.2 * x) / (width - 1);
        let [zr, zi, i] = [0, 0, 0];
        for (; i < maxIter && zr * zr + zi * zi <= 4; i++) [zr, zi] = [zr * zr - zi * zi + cr, 2 * zr * zi + ci];
        return i;
      });
      expect(line.result).toEqual(expected);
    }
    // The assembler makes a binary PGM of the rows it was given: here 320 × 4.
    const image = execFileSync("node", [join(examples, "mandelbrot/assemble.js")], { input: result.stdout, env: userShellEnv() });
    const header = "P5\n320 4\n255\n";
    expect(image.subarray(0, header.length).toString()).toBe(header);
    expect(image.length).toBe(header.length + 320 * 4);
  });

  it("wasm-collatz compiles its .wat and computes through ctx.wasm what plain JS computes here", async () => {
    const dir = join(examples, "wasm-collatz");
    const result = await runCli(["run", join(dir, "work.js"), "--wasm", join(dir, "collatz.wat"), "--range", "1:300000:1:100000"]);
    expect(result.code).toBe(0);
    const steps = (start: number) => {
      let n = BigInt(start);
      let count = 0;
      for (; n > 1n; count++) n = n % 2n === 0n ? n / 2n : 3n * n + 1n;
      return count;
    };
    const expected = [0, 1, 2].map((index) => {
      const input = { start: 1 + index * 100_000, end: Math.min(1 + (index + 1) * 100_000, 300_000), step: 1 };
      let best = { n: input.start, steps: -1 };
      for (let n = input.start; n < input.end; n++) {
        const count = steps(n);
        if (count > best.steps) best = { n, steps: count };
      }
      return { index, input, status: "done", result: best };
    });
    expect(parseJsonLines(result.stdout)).toEqual(expected);
  });

  it("webgpu-pi counts on the GPU (SwiftShader here) exactly what its JS checker counts", async () => {
    const dir = join(examples, "webgpu-pi");
    const result = await runCli(["run", join(dir, "work.js"), "--webgpu", "--range", "0:2000000:1:500000", "--threads", "1"]);
    expect(result.stderr).toContain("4 done, 0 failed");
    expect(result.code).toBe(0);
    const lines = parseJsonLines(result.stdout) as { result: { samples: number; inside: number } }[];
    expect(lines.map((line) => line.result.samples)).toEqual([500_000, 500_000, 500_000, 500_000]);
    const verified = execFileSync("node", [join(dir, "verify.js")], { input: result.stdout, encoding: "utf8", env: userShellEnv() });
    expect(verified).toMatch(/^2000000 samples, π ≈ 3\.14\d+, 0 chunks wrong$/m);
  });

  it("webgpu-pi fails clearly on a browser without WebGPU", async () => {
    const result = await runCli(["run", join(examples, "webgpu-pi/work.js"), "--range", "0:1000:1:1000"]);
    expect(result.code).toBe(1);
    expect(parseJsonLines(result.stdout)).toEqual([
      { index: 0, input: { start: 0, end: 1000, step: 1 }, status: "failed", error: { kind: "throw", message: expect.stringContaining("no WebGPU here") } },
    ]);
  });
});
