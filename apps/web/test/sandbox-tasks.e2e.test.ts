// WASM, WebGPU and hostile tasks through the real API, computed by the real volunteer page
// in Chromium (SwiftShader's WebGPU adapter, issue 5).
import type { RunningServer } from "@crowdcompute/api/node-server";
import { type Client, createClient, type NewTask, type ResultLine, type Task } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gpuSquaresCode, gpuSquaresExpected } from "../../../packages/sandbox/test/gpu-work.ts";
import { compileWat, fib, fibWat, sha256Hex } from "../../../packages/sandbox/test/wat.ts";
import { browserTestBackend as backend, startTestServer, until } from "./helpers.ts";

describe(`WASM, WebGPU and hostile tasks in the volunteer page (${backend})`, () => {
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let creator: Client;

  beforeAll(async () => {
    ({ server, close: stopServer } = await startTestServer({ LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" }));
    browser = await chromium.launch({
      executablePath: findChromium(),
      // WebGPU through SwiftShader (it works with --disable-gpu too); a small heap makes the heap blow-up quick.
      args: [...chromiumArgs, "--enable-unsafe-webgpu", "--js-flags=--max-old-space-size=256"],
    });
    const anonymous = createClient({ baseUrl: server.url });
    creator = anonymous.withToken((await anonymous.register("creator@example.com", "a long password")).token);

    context = await browser.newContext();
    page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.getByRole("slider", { name: "Threads" }).fill("2");
    await page.getByRole("button", { name: "Start" }).click();
  });

  afterAll(async () => {
    await browser?.close();
    await stopServer?.();
  });

  const create = (task: NewTask): Promise<Task> => creator.createTask({ start: true, ...task });

  async function finished(task: Task): Promise<{ view: Task; lines: ResultLine[] }> {
    const view = await until(
      `task ${task.name} to end`,
      async () => {
        const current = await creator.getTask(task.id);
        return current.status === "done" || current.status === "failed" ? current : null;
      },
      90_000,
    );
    const lines: ResultLine[] = [];
    for await (const line of creator.results(task.id)) lines.push(line);
    return { view, lines };
  }

  it("computes a task with a .wasm: the page fetches the module, the sandbox checks it, work code gets ctx.wasm", async () => {
    const wasm = await compileWat(fibWat);
    const code = `export default function work(n, ctx) {
      if (!(ctx.wasm instanceof WebAssembly.Instance)) throw new Error("no ctx.wasm");
      return { n, fib: String(ctx.wasm.exports.fib(n)) };
    }`;
    const inputs = Array.from({ length: 40 }, (_, i) => i * 2);
    const task = await create({ name: "fib in wasm", code, inputs, wasm: Buffer.from(wasm).toString("base64") });
    expect(task.wasmSha256).toBe(sha256Hex(wasm));
    const { view, lines } = await finished(task);
    expect(view.counts).toEqual({ total: inputs.length, pending: 0, leased: 0, done: inputs.length, failed: 0, awaitingCopy: 0 });
    expect(lines.map((line) => line.status === "done" && line.result)).toEqual(inputs.map((n) => ({ n, fib: String(fib(n)) })));
  });

  it("computes a task that requires WebGPU with a real compute shader, and the page reports the capability", async () => {
    const inputs = Array.from({ length: 6 }, (_, chunk) => Array.from({ length: 100 + chunk }, (_, i) => (i - 50) / 4));
    const task = await create({ name: "gpu squares", code: gpuSquaresCode, inputs, requires: { webgpu: true } });
    // The API leases this task only to volunteers that report `webgpu`: finishing it shows the page did.
    const { view, lines } = await finished(task);
    expect(view.counts.done).toBe(inputs.length);
    expect(lines.map((line) => line.status === "done" && line.result)).toEqual(inputs.map(gpuSquaresExpected));
  });

  it("survives hostile chunks (network, loop, huge result, heap blow-up): each fails alone and the next task computes", async () => {
    const hostile = `export default async function work(input) {
      switch (input) {
        case "fetch": return await fetch(${JSON.stringify(server.url)} + "/api/health").then((r) => r.text());
        case "import": return await import(${JSON.stringify(server.url)} + "/api/stats");
        case "loop": for (;;) {}
        case "huge": return "x".repeat(2 * 1024 * 1024);
        case "heap": { const hog = []; for (;;) hog.push(new Array(1e6).fill(1)); }
        default: return input;
      }
    }`;
    const inputs = ["fetch", "import", "loop", "huge", 7];
    const bad = await create({ name: "hostile", code: hostile, inputs, timeoutMs: 3000, maxAttempts: 1 });
    const { view, lines } = await finished(bad);
    const kinds = lines.map((line) => (line.status === "failed" ? (line.error as { kind: string }).kind : line.result));
    expect(kinds).toEqual(["throw", "throw", "timeout", "invalid-result", 7]);
    expect(view.counts).toMatchObject({ done: 1, failed: 4 });

    // A heap blow-up kills the frame's process; the page re-creates it and fails only that attempt.
    const heap = await create({ name: "heap", code: hostile, inputs: ["heap"], timeoutMs: 20_000, maxAttempts: 1 });
    const blown = await finished(heap);
    expect(blown.lines.map((line) => line.status === "failed" && (line.error as { kind: string }).kind)).toEqual(["oom"]);

    const next = await create({ name: "after the storm", code: "export default (n) => n * n;", inputs: [1, 2, 3, 4, 5, 6, 7, 8] });
    const after = await finished(next);
    expect(after.view.status).toBe("done");
    expect(after.lines.map((line) => line.status === "done" && line.result)).toEqual([1, 4, 9, 16, 25, 36, 49, 64]);
  });

  it("a module that is not the one the task names fails the chunks at once, as throw: the sandbox checks it, not the page", async () => {
    const named = await compileWat(fibWat.replace("i32.const 1))", "i32.const 2))"));
    const served = await compileWat(fibWat);
    // The bytes change on the way to the page (a server mid-deploy, a proxy): the page hands them on unchecked.
    await page.route("**/api/tasks/*/wasm", (route) => route.fulfill({ status: 200, contentType: "application/wasm", body: Buffer.from(served) }));
    try {
      const task = await create({ name: "altered wasm", code: "export default (n, ctx) => ctx.wasm.exports.fib(n);", inputs: [1, 2, 3], wasm: Buffer.from(named).toString("base64"), maxAttempts: 1 });
      const { view, lines } = await finished(task);
      expect(view.counts).toMatchObject({ done: 0, failed: 3 });
      expect(lines.map((line) => line.status === "failed" && line.error)).toEqual(
        Array(3).fill({ kind: "throw", message: expect.stringMatching(new RegExp(`its wasm hashes to ${sha256Hex(served)}, not ${sha256Hex(named)}`)) }),
      );
    } finally {
      await page.unroute("**/api/tasks/*/wasm");
    }
    // The page forgot the refused bytes: the next task naming that module fetches it again.
    const again = await create({ name: "wasm again", code: "export default (n, ctx) => Number(ctx.wasm.exports.fib(n));", inputs: [10], wasm: Buffer.from(named).toString("base64"), maxAttempts: 1 });
    const second = await finished(again);
    expect(second.view.counts).toMatchObject({ done: 1, failed: 0 });
    expect(second.lines.map((line) => line.status === "done" && line.result)).toEqual([5]); // the named (altered) module's answer
  });
});
