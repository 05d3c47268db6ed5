import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import type { ChunkCheckpoint, ChunkOutcome, ChunkProgress, SandboxChunk, SandboxTask } from "../src/index.ts";
import { gpuSquaresCode, gpuSquaresExpected } from "./gpu-work.ts";
import { sandboxPage } from "./sandbox-page.ts";
import { compileWat, fib, fibWat } from "./wat.ts";

// A small heap makes the out-of-memory test quick and light.
// SwiftShader's software adapter gives workers WebGPU (it works with --disable-gpu too).
const running = sandboxPage({ threads: 2, args: ["--enable-unsafe-webgpu", "--js-flags=--max-old-space-size=256"] });

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

interface TaskOptions {
  taskId?: string;
  timeoutMs?: number;
  wasm?: Uint8Array;
  webgpu?: boolean;
}

function taskFor(code: string, options: TaskOptions = {}): SandboxTask {
  const codeSha256 = sha256(code);
  const task: SandboxTask = { taskId: options.taskId ?? codeSha256, code, codeSha256, timeoutMs: options.timeoutMs ?? 5000 };
  if (options.wasm) Object.assign(task, { wasm: options.wasm, wasmSha256: createHash("sha256").update(options.wasm).digest("hex") });
  if (options.webgpu) task.webgpu = true;
  return task;
}

const chunksFor = (inputs: unknown[]): SandboxChunk[] => inputs.map((input, index) => ({ key: `chunk-${index}`, index, input }));

/** A task as it crosses into the page: the module's bytes travel as base64. */
type WireTask = Omit<SandboxTask, "wasm"> & { wasmBase64?: string };

function toWire(task: SandboxTask): WireTask {
  const { wasm, ...rest } = task;
  return wasm ? { ...rest, wasmBase64: Buffer.from(wasm).toString("base64") } : rest;
}

function runBatch(task: SandboxTask, chunks: SandboxChunk[]): Promise<ChunkOutcome[]> {
  return running.page.evaluate(
    ([{ wasmBase64, ...task }, chunks]) => {
      const wasm = wasmBase64 === undefined ? undefined : Uint8Array.from(atob(wasmBase64), (char) => char.charCodeAt(0));
      return window.sandbox.runBatch({ ...task, wasm }, chunks);
    },
    [toWire(task), chunks] as const,
  );
}

async function run(code: string, inputs: unknown[], options?: TaskOptions): Promise<ChunkOutcome[]> {
  return runBatch(taskFor(code, options), chunksFor(inputs));
}

function results(outcomes: ChunkOutcome[]): unknown[] {
  return outcomes.map((outcome) => (outcome.ok ? JSON.parse(outcome.resultJson) : outcome.error));
}

test("a batch computes the right values, in input order", async () => {
  const code = `export default function work(n, ctx) {
    let sum = 0;
    for (let i = 1; i <= n; i++) sum += i * i;
    return { index: ctx.index, sum };
  }`;
  const inputs = Array.from({ length: 40 }, (_, i) => i * 1000);
  const expected = inputs.map((n, index) => {
    let sum = 0;
    for (let i = 1; i <= n; i++) sum += i * i;
    return { index, sum };
  });
  const outcomes = await run(code, inputs);
  expect(outcomes.map((outcome) => outcome.key)).toEqual(inputs.map((_, i) => `chunk-${i}`));
  expect(results(outcomes)).toEqual(expected);
  for (const outcome of outcomes) expect(outcome.cpuMs).toBeGreaterThanOrEqual(0);
});

test("threads > 1 run chunks in parallel", async () => {
  // A second long: on a busy 2-core machine the second worker may start a few hundred ms late.
  const code = `export default function work() {
    const now = () => performance.timeOrigin + performance.now();
    const start = now();
    while (now() - start < 1000) {}
    return [start, now()];
  }`;
  const spans = results(await run(code, [0, 1])) as [number, number][];
  const [first, second] = spans as [[number, number], [number, number]];
  expect(Math.max(first[0], second[0])).toBeLessThan(Math.min(first[1], second[1]));
});

test("a throwing chunk fails with its message; the others succeed", async () => {
  const code = `export default function work(input) {
    if (input === 2) throw new Error("boom at " + input);
    if (input === 3) throw "a bare string";
    return input;
  }`;
  expect(results(await run(code, [0, 1, 2, 3, 4]))).toEqual([0, 1, { kind: "throw", message: "boom at 2" }, { kind: "throw", message: "a bare string" }, 4]);
});

test("an infinite loop times out and the rest of the batch still computes", async () => {
  const code = `export default function work(input) {
    if (input === "spin") for (;;) {}
    return input * 2;
  }`;
  await running.page.evaluate(() => window.sandbox.setThreads(1));
  try {
    const started = Date.now();
    const outcomes = await run(code, [1, "spin", 3, 4, 5], { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(results(outcomes)).toEqual([2, { kind: "timeout", message: "the chunk ran longer than its timeout of 300 ms" }, 6, 8, 10]);
  } finally {
    await running.page.evaluate(() => window.sandbox.setThreads(2));
  }
});

test("ctx.signal aborts at the deadline, so cooperative work ends as a timeout", async () => {
  const code = `export default async function work(input, ctx) {
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    return ctx.signal.reason.name;
  }`;
  expect(results(await run(code, [0], { timeoutMs: 200 }))).toEqual([{ kind: "timeout", message: "the chunk ran longer than its timeout of 200 ms" }]);
});

test("results that are not JSON, or over 1 MiB, are invalid", async () => {
  const code = `export default function work(input) {
    switch (input) {
      case "undefined": return undefined;
      case "function": return () => 1;
      case "bigint": return 1n;
      case "cycle": { const a = {}; a.self = a; return a; }
      case "huge": return "x".repeat(1024 * 1024);
      default: return { fine: input };
    }
  }`;
  const outcomes = await run(code, ["undefined", "function", "bigint", "cycle", "huge", "ok"]);
  expect(outcomes.slice(0, 5).map((outcome) => !outcome.ok && outcome.error.kind)).toEqual(Array(5).fill("invalid-result"));
  expect(results(outcomes)[5]).toEqual({ fine: "ok" });
});

test("a result nested deeper than the server stores is invalid in the sandbox, not refused with its whole report", async () => {
  const code = `export default function work(depth) {
    let value = "leaf";
    for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { v: value };
    return value;
  }`;
  const outcomes = await run(code, [64, 65]);
  expect(outcomes[0]!.ok).toBe(true);
  expect(results(outcomes)[1]).toEqual({ kind: "invalid-result", message: "the result nests deeper than 64 levels of arrays and objects" });
});

test("code without a default export function fails every chunk with a clear message", async () => {
  const missing = results(await run("export const work = (input) => input;", [0, 1]));
  expect(missing).toEqual(Array(2).fill({ kind: "throw", message: expect.stringMatching(/no default export function/) }));
  const broken = results(await run("export default function (", [0]));
  expect(broken).toEqual([{ kind: "throw", message: expect.stringMatching(/failed to load: SyntaxError/) }]);
});

test("the host refuses code that does not match its sha256", async () => {
  const task = { ...taskFor("export default () => 1;"), code: "export default () => 2;" };
  await expect(runBatch(task, chunksFor([0]))).rejects.toThrow(/refusing to run task/);
});

test("storage, nested workers and broadcast channels are gone from work code", async () => {
  const code = `export default function work() {
    const proto = (object, name) => {
      for (let p = object; p; p = Object.getPrototypeOf(p)) {
        const found = Object.getOwnPropertyDescriptor(p, name);
        if (found?.get) return typeof found.get.call(object);
      }
      return "undefined";
    };
    return {
      indexedDB: typeof indexedDB,
      caches: typeof caches,
      storage: typeof navigator.storage,
      locks: typeof navigator.locks,
      BroadcastChannel: typeof BroadcastChannel,
      Worker: typeof Worker,
      SharedWorker: typeof SharedWorker,
      storageViaPrototype: proto(navigator, "storage"),
      indexedDBViaPrototype: proto(self, "indexedDB"),
      deletable: Reflect.deleteProperty(self, "indexedDB"),
    };
  }`;
  const [found] = results(await run(code, [0]));
  expect(found).toEqual({
    indexedDB: "undefined",
    caches: "undefined",
    storage: "undefined",
    locks: "undefined",
    BroadcastChannel: "undefined",
    Worker: "undefined",
    SharedWorker: "undefined",
    storageViaPrototype: "undefined",
    indexedDBViaPrototype: "undefined",
    deletable: false,
  });
});

test("work code cannot reach the network; the app page can (positive control)", async () => {
  const url = running.servers.listenerUrl;
  const code = `export default async function work(url) {
    const attempt = async (what, go) => {
      try { await go(); return what + ": reached"; } catch (err) { return what + ": blocked"; }
    };
    return [
      await attempt("fetch", () => fetch(url + "fetch")),
      await attempt("fetch same origin", () => fetch(location.origin + "/same-origin")),
      await attempt("import", () => import(url + "import.js")),
      await attempt("importScripts", () => importScripts(url + "script.js")),
      await attempt("xhr", () => { const xhr = new XMLHttpRequest(); xhr.open("GET", url + "xhr", false); xhr.send(); }),
      await attempt("websocket", () => new Promise((resolve, reject) => {
        const socket = new WebSocket(url.replace("http", "ws") + "ws");
        socket.onopen = resolve;
        socket.onerror = () => reject(new Error("closed"));
      })),
    ];
  }`;
  const [attempts] = results(await run(code, [url]));
  expect(attempts).toEqual(["fetch", "fetch same origin", "import", "importScripts", "xhr", "websocket"].map((what) => `${what}: blocked`));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(running.servers.listenerConnections()).toBe(0);
  expect(running.servers.sandboxStrayRequests()).toEqual([]);

  const fromApp = await running.page.evaluate((target) => fetch(target).then((response) => response.text()), `${url}control`);
  expect(fromApp).toBe("reached");
  expect(running.servers.listenerConnections()).toBe(1);
});

test("workers are reused within a task and replaced on a task switch", async () => {
  const code = `export default function work(input) {
    const before = globalThis.remembered ?? null;
    globalThis.remembered = input;
    return before;
  }`;
  await running.page.evaluate(() => window.sandbox.setThreads(1));
  try {
    expect(results(await run(code, [1], { taskId: "task-a" }))).toEqual([null]);
    expect(results(await run(code, [2], { taskId: "task-a" }))).toEqual([1]);
    expect(results(await run(code, [3], { taskId: "task-b" }))).toEqual([null]);
  } finally {
    await running.page.evaluate(() => window.sandbox.setThreads(2));
  }
});

test("progress reaches the host, at most 4 times a second per chunk", async () => {
  const code = `export default async function work(input, ctx) {
    const start = performance.now();
    while (performance.now() - start < 800) {
      ctx.progress((performance.now() - start) / 800, "working");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    ctx.progress(7);
    return "done";
  }`;
  const { outcomes, events } = await running.page.evaluate(
    async ([task, chunks]) => {
      const events: ChunkProgress[] = [];
      const outcomes = await window.sandbox.runBatch(task, chunks, { onProgress: (progress) => events.push(progress) });
      await new Promise((resolve) => setTimeout(resolve, 100));
      return { outcomes, events };
    },
    [taskFor(code), chunksFor([0])] as const,
  );
  expect(results(outcomes)).toEqual(["done"]);
  expect(events.length).toBeGreaterThanOrEqual(2);
  expect(events.length).toBeLessThanOrEqual(5);
  for (const event of events) {
    expect(event.key).toBe("chunk-0");
    expect(event.fraction).toBeGreaterThanOrEqual(0);
    expect(event.fraction).toBeLessThanOrEqual(1);
  }
});

describe("console", () => {
  test("each call is a line of its chunk's outcome, with its level; a chunk that logs nothing carries no console", async () => {
    const code = `export default function work(n) {
      if (n === 0) return "quiet";
      console.log("value", n, { twice: n * 2 }, [1, "a"]);
      console.info("%s has %d items (%o)", "list", 3.7, { a: 1 });
      console.warn("careful");
      console.error(new RangeError("bad " + n));
      console.debug(null, undefined, 10n, Symbol("s"));
      console.assert(n > 100, "n is small:", n);
      console.assert(true, "never shown");
      console.time("t"); console.group("g"); console.count();
      const cycle = {}; cycle.self = cycle;
      console.log(cycle);
      return n;
    }`;
    const outcomes = await run(code, [0, 5]);
    expect(results(outcomes)).toEqual(["quiet", 5]);
    expect("console" in outcomes[0]!).toBe(false);
    const lines = outcomes[1]!.console!.lines;
    expect(outcomes[1]!.console!.truncated).toBeUndefined();
    expect(lines.map((line) => line.level)).toEqual(["log", "info", "warn", "error", "debug", "error", "log"]);
    expect(lines[0]!.text).toBe('value 5 {"twice":10} [1,"a"]');
    expect(lines[1]!.text).toBe('list has 3 items ({"a":1})');
    expect(lines[2]!.text).toBe("careful");
    expect(lines[3]!.text).toMatch(/^RangeError: bad 5/);
    expect(lines[4]!.text).toBe("null undefined 10 Symbol(s)");
    expect(lines[5]!.text).toBe("Assertion failed n is small: 5");
    expect(lines[6]!.text).toBe("[object Object]");
  });

  test("a chunk keeps at most 100 lines and 16 KiB of text, marked truncated; the next chunk starts afresh", async () => {
    const code = `export default function work(kind) {
      if (kind === "lines") for (let i = 0; i < 1000; i++) console.log("line " + i);
      if (kind === "bytes") for (let i = 0; i < 10; i++) console.log(String(i).repeat(5000));
      if (kind === "one") console.log("just one");
      return kind;
    }`;
    const outcomes = await run(code, ["lines", "bytes", "one"], { taskId: "console-bounds" });
    expect(results(outcomes)).toEqual(["lines", "bytes", "one"]);
    const [lines, bytes, one] = outcomes.map((outcome) => outcome.console!);
    expect(lines!.lines.length).toBe(100);
    expect(lines!.lines.at(-1)!.text).toBe("line 99");
    expect(lines!.truncated).toBe(true);
    expect(bytes!.lines.reduce((sum, line) => sum + line.text.length, 0)).toBe(16 * 1024);
    expect(bytes!.lines.length).toBe(4);
    expect(bytes!.truncated).toBe(true);
    expect(one).toEqual({ lines: [{ level: "log", text: "just one" }] });
  });

  test("a chunk stopped at its deadline keeps the lines it wrote before", async () => {
    const code = `export default function work() {
      const start = performance.now();
      let i = 0;
      for (;;) {
        if (performance.now() - start > 100 * i && i < 5) console.log("step " + i++);
      }
    }`;
    const [outcome] = await run(code, [0], { timeoutMs: 1500, taskId: "console-timeout" });
    expect(outcome!.ok).toBe(false);
    expect(outcome!.ok ? null : outcome!.error.kind).toBe("timeout");
    // Lines leave the worker every 250 ms while it runs: those sent before the deadline are kept.
    expect(outcome!.console!.lines.length).toBeGreaterThanOrEqual(1);
    expect(outcome!.console!.lines[0]).toEqual({ level: "log", text: "step 0" });
  });
});

describe("checkpoints", () => {
  test("ctx.checkpoint reaches the host as JSON text, one per 500 ms at most; ctx.resume is the chunk's resume", async () => {
    const code = `export default async function work(input, ctx) {
      const kept = [];
      for (let i = 0; i < 1000; i++) kept.push(ctx.checkpoint({ i, from: ctx.resume ?? null }));
      await new Promise((resolve) => setTimeout(resolve, 600));
      const later = ctx.checkpoint({ i: "later" });
      return { first: kept[0], others: kept.filter(Boolean).length, later, resume: ctx.resume ?? null };
    }`;
    const chunks: SandboxChunk[] = [
      { key: "fresh", index: 0, input: 0 },
      { key: "resumed", index: 1, input: 1, resume: { i: 41, note: "from before" } },
    ];
    const { outcomes, checkpoints } = await running.page.evaluate(
      async ([task, chunks]) => {
        const checkpoints: ChunkCheckpoint[] = [];
        const outcomes = await window.sandbox.runBatch(task, chunks, { onCheckpoint: (checkpoint) => checkpoints.push(checkpoint) });
        await new Promise((resolve) => setTimeout(resolve, 100));
        return { outcomes, checkpoints };
      },
      [taskFor(code, { taskId: "checkpoints" }), chunks] as const,
    );
    expect(results(outcomes)).toEqual([
      { first: true, others: 1, later: true, resume: null },
      { first: true, others: 1, later: true, resume: { i: 41, note: "from before" } },
    ]);
    const byKey = (key: string) => checkpoints.filter((checkpoint) => checkpoint.key === key).map((checkpoint) => JSON.parse(checkpoint.json) as unknown);
    expect(byKey("fresh")).toEqual([{ i: 0, from: null }, { i: "later" }]);
    expect(byKey("resumed")).toEqual([{ i: 0, from: { i: 41, note: "from before" } }, { i: "later" }]);
  });

  test("a state that is not JSON, over 256 KiB or nested deeper than 64 levels throws in the work code", async () => {
    const code = `export default function work(kind, ctx) {
      const states = {
        function: () => 1,
        big: "x".repeat(256 * 1024),
        deep: JSON.parse("[".repeat(65) + "]".repeat(65)),
        cycle: (() => { const o = {}; o.o = o; return o; })(),
      };
      try { ctx.checkpoint(states[kind]); return "saved"; } catch (err) { return err.name + ": " + err.message; }
    }`;
    const outcomes = await run(code, ["function", "big", "deep", "cycle"], { taskId: "checkpoint-limits" });
    const said = results(outcomes) as string[];
    expect(said[0]).toMatch(/^TypeError: ctx.checkpoint\(state\): the state must be a JSON value/);
    expect(said[1]).toMatch(/^RangeError: .*at most 262144/);
    expect(said[2]).toMatch(/^RangeError: .*deeper than 64/);
    expect(said[3]).toMatch(/^TypeError: ctx.checkpoint\(state\): the state is not JSON/);
  });
});

test("a frame killed by an unbounded heap fails only the chunk that blew it up, as oom, and is replaced", { timeout: 60_000 }, async () => {
  const code = `export default function work(input) {
    if (input !== "hog") return input;
    const hog = [];
    for (;;) hog.push(new Array(1e6).fill(input.length));
  }`;
  // Playwright treats any renderer crash of a page, even its out-of-process iframe's, as
  // the page's own and refuses further calls: use a page of its own, driven over CDP.
  const crashing = await running.browser.newPage();
  try {
    await crashing.goto(`${running.servers.appOrigin}/`);
    const cdp = await crashing.context().newCDPSession(crashing);
    const evaluate = async (expression: string): Promise<unknown> => {
      const reply = (await cdp.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true })) as {
        result: { value?: unknown };
        exceptionDetails?: unknown;
      };
      if (reply.exceptionDetails) throw new Error(JSON.stringify(reply.exceptionDetails));
      return reply.result.value;
    };
    await evaluate(`ccSandbox.createSandbox({ origin: ${JSON.stringify(running.servers.sandboxOrigin)}, threads: 2 }).then((sandbox) => { window.sandbox = sandbox; })`);
    const batch = (inputs: unknown[]): Promise<unknown> => evaluate(`window.sandbox.runBatch(${JSON.stringify(taskFor(code, { timeoutMs: 20_000 }))}, ${JSON.stringify(chunksFor(inputs))})`);
    // The frame said which chunks its workers ran; the others, and then each of those alone, run again.
    const crashed = (await batch([1, "hog", 3])) as ChunkOutcome[];
    expect(crashed.map((outcome) => !outcome.ok && outcome.error.kind)).toEqual([false, "oom", false]);
    expect(results(crashed)).toEqual([1, { kind: "oom", message: expect.any(String) }, 3]);
    expect(results((await batch([1, 2, 3])) as ChunkOutcome[])).toEqual([1, 2, 3]);
  } finally {
    await crashing.close();
  }
});

test("the frame takes one connection only; later connect messages are ignored", async () => {
  const answers = await running.page.evaluate(async (origin) => {
    const iframe = document.createElement("iframe");
    iframe.setAttribute("sandbox", "allow-scripts allow-same-origin");
    iframe.src = `${origin}/`;
    const ready = new Promise((resolve) => addEventListener("message", (event) => event.source === iframe.contentWindow && resolve(null)));
    document.body.append(iframe);
    await ready;
    // Comlink's wire format: does anything answer a ping sent down this port?
    const pingOver = async (): Promise<unknown> => {
      const { port1, port2 } = new MessageChannel();
      iframe.contentWindow?.postMessage({ type: "cc-sandbox-connect" }, origin, [port2]);
      const reply = new Promise((resolve) => {
        port1.onmessage = (event) => resolve(event.data.value);
        setTimeout(() => resolve("no answer"), 300);
      });
      port1.postMessage({ id: "probe", type: "APPLY", path: ["ping"], argumentList: [] });
      return reply;
    };
    const first = await pingOver();
    const second = await pingOver();
    iframe.remove();
    return [first, second];
  }, running.servers.sandboxOrigin);
  expect(answers).toEqual(["pong", "no answer"]);
});

describe("reduce and canonicalize exports", () => {
  const code = `
    export default (x) => ({ value: x / 3 });
    export function reduce(results) { return { value: results.reduce((sum, r) => sum + r.value, 0) }; }
    // Rounds floats so that copies computed on different hardware hash alike.
    export function canonicalize(result) { return { value: Math.round(result.value * 1000) / 1000 }; }`;

  test("a reduce chunk calls reduce(results); every result passes through canonicalize", async () => {
    const task = taskFor(code);
    const outcomes = await runBatch(task, [
      { key: "map", index: 0, input: 1 },
      { key: "reduce", index: 1, input: [{ value: 0.1 }, { value: 0.2 }], entry: "reduce" },
    ]);
    expect(results(outcomes)).toEqual([{ value: 0.333 }, { value: 0.3 }]);
  });

  test("a reduce chunk of code without a reduce export fails with a clear message", async () => {
    const [outcome] = await runBatch(taskFor("export default (x) => x"), [{ key: "r", index: 0, input: [1, 2], entry: "reduce" }]);
    expect(outcome).toMatchObject({ ok: false, error: { kind: "throw", message: expect.stringMatching(/no `export function reduce/) } });
  });
});

describe("the sandbox document", () => {
  test("is served with a CSP that allows no network and no 'self'", async () => {
    const response = await fetch(`${running.servers.sandboxOrigin}/`);
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toMatch(/^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+=*' blob: 'unsafe-eval' 'wasm-unsafe-eval'; worker-src blob:; connect-src 'none'/);
    expect(csp).toContain(`frame-ancestors ${running.servers.appOrigin}`);
    expect(csp).not.toContain("'self'");
    expect(response.headers.get("permissions-policy")).toBe(
      "camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=(), bluetooth=(), clipboard-read=(), clipboard-write=(), display-capture=()",
    );
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await response.text()).toMatch(/^<!doctype html>.*<script>.+<\/script>/s);
  });

  test("runs in its own process (an out-of-process iframe)", async () => {
    const session = await running.browser.newBrowserCDPSession();
    const { targetInfos } = (await session.send("Target.getTargets")) as { targetInfos: { type: string; url: string }[] };
    await session.detach();
    expect(targetInfos).toContainEqual(expect.objectContaining({ type: "iframe", url: `${running.servers.sandboxOrigin}/` }));
  });
});

describe("WebAssembly", () => {
  const code = `export default function work(n, ctx) {
    return { fib: String(ctx.wasm.exports.fib(n)), bump: ctx.wasm.exports.bump(), isInstance: ctx.wasm instanceof WebAssembly.Instance };
  }`;

  test("ctx.wasm is an instance of the task's module, one per worker, kept across its chunks", async () => {
    const wasm = await compileWat(fibWat);
    await running.page.evaluate(() => window.sandbox.setThreads(1));
    try {
      const inputs = [10, 50, 90];
      const found = results(await run(code, inputs, { wasm, taskId: "wasm-task" })) as { fib: string; bump: number; isInstance: boolean }[];
      expect(found.map((r) => r.fib)).toEqual(inputs.map((n) => String(fib(n))));
      expect(found.map((r) => r.isInstance)).toEqual([true, true, true]);
      // One instance per worker: its memory carries the counter from chunk to chunk and batch to batch.
      expect(found.map((r) => r.bump)).toEqual([1, 2, 3]);
      const next = results(await run(code, [1], { wasm, taskId: "wasm-task" })) as { bump: number }[];
      expect(next[0]?.bump).toBe(4);
    } finally {
      await running.page.evaluate(() => window.sandbox.setThreads(2));
    }
  });

  test("each worker has its own instance of the module the frame compiled", async () => {
    const wasm = await compileWat(fibWat);
    const slow = `export default function work(n, ctx) {
      const start = performance.now();
      while (performance.now() - start < 300) {}
      return ctx.wasm.exports.bump();
    }`;
    const bumps = results(await run(slow, [5, 6, 7, 8], { wasm, taskId: "wasm-two-threads" })) as number[];
    // Two workers running at once, two instances: each counts its own chunks from 1.
    expect(bumps.filter((bump) => bump === 1)).toHaveLength(2);
  });

  test("the host refuses a module that does not match its sha256, and a task without one gets no ctx.wasm", async () => {
    const wasm = await compileWat(fibWat);
    const task = { ...taskFor(code, { wasm }), wasm: await compileWat(fibWat.replace("i32.const 1))", "i32.const 2))")) };
    // The chunks fail at once, as a throw the volunteer reports, rather than wait out their lease.
    expect(results(await runBatch(task, chunksFor([1, 2])))).toEqual(Array(2).fill({ kind: "throw", message: expect.stringMatching(/its wasm hashes to/) }));
    const { wasm: _bytes, ...named } = taskFor(code, { wasm });
    await expect(runBatch(named, chunksFor([1]))).rejects.toThrow(/names a wasm module .* but none was given/);
    expect(results(await run("export default (input, ctx) => typeof ctx.wasm;", [0]))).toEqual(["undefined"]);
  });

  test("a module's imports come from the work code's `wasmImports` export", async () => {
    const wasm = await compileWat(`(module
      (import "env" "triple" (func $triple (param i32) (result i32)))
      (func (export "run") (param i32) (result i32) (i32.add (call $triple (local.get 0)) (i32.const 1))))`);
    const code = `export const wasmImports = () => ({ env: { triple: (x) => x * 3 } });
      export default (n, ctx) => ctx.wasm.exports.run(n);`;
    expect(results(await run(code, [1, 5, 14], { wasm }))).toEqual([4, 16, 43]);
    const missing = results(await run("export default (n, ctx) => n;", [1], { wasm }));
    expect(missing).toEqual([{ kind: "throw", message: expect.stringMatching(/failed to instantiate/) }]);
  });

  test("a module that does not compile fails the chunks with a clear message", async () => {
    const broken = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99]);
    const outcomes = results(await run(code, [1, 2], { wasm: broken }));
    expect(outcomes).toEqual(Array(2).fill({ kind: "throw", message: expect.stringMatching(/WebAssembly module does not compile/) }));
  });
});

describe("WebGPU", () => {
  const code = gpuSquaresCode;

  test("a task that requires WebGPU gets a GPUDevice, and a real compute shader's output is right", async () => {
    const inputs = [Array.from({ length: 300 }, (_, i) => i / 4), [3, -2, 0.5]];
    const outcomes = await run(code, inputs, { webgpu: true });
    expect(results(outcomes)).toEqual(inputs.map(gpuSquaresExpected));
  });

  test("a task that does not require WebGPU gets no ctx.gpu", async () => {
    expect(results(await run("export default (input, ctx) => typeof ctx.gpu;", [0]))).toEqual(["undefined"]);
  });

  test("at a deadline the chunk's device is destroyed; the next chunk gets a fresh one", async () => {
    const watch = `export default async function work(input, ctx) {
      if (input === "hold") {
        globalThis.held = ctx.gpu;
        ctx.gpu.lost.then((info) => { globalThis.lostReason = info.reason; });
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        return "aborted";
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { lostReason: globalThis.lostReason ?? null, fresh: ctx.gpu !== globalThis.held && typeof ctx.gpu?.createBuffer === "function" };
    }`;
    await running.page.evaluate(() => window.sandbox.setThreads(1));
    try {
      const outcomes = results(await run(watch, ["hold", "after"], { webgpu: true, timeoutMs: 1000 }));
      expect(outcomes).toEqual([
        { kind: "timeout", message: "the chunk ran longer than its timeout of 1000 ms" },
        { lostReason: "destroyed", fresh: true },
      ]);
    } finally {
      await running.page.evaluate(() => window.sandbox.setThreads(2));
    }
  });
});

describe("cancel", () => {
  test("cancelled chunks end as cancelled at once, whether waiting, cooperative or spinning; the rest compute", async () => {
    const code = `export default async function work(input, ctx) {
      ctx.progress(0, "started");
      if (input === "wait") await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      if (input === "spin") for (;;) {}
      if (input === "seen") return globalThis.seen ?? null;
      globalThis.seen = ctx.signal.reason?.name ?? null;
      return input * 2;
    }`;
    await running.page.evaluate(() => window.sandbox.setThreads(1));
    try {
      const outcomes = await running.page.evaluate(
        async ([task, chunks]) => {
          const started = new Set<string>();
          let wake = (): void => {};
          const batch = window.sandbox.runBatch(task, chunks, {
            onProgress: ({ key }) => {
              started.add(key);
              wake();
            },
          });
          const untilStarted = async (key: string): Promise<void> => {
            while (!started.has(key)) await new Promise<void>((resolve) => (wake = resolve));
          };
          // chunk-6 is still waiting in the frame when chunk-0 runs (4 chunks go to a worker at a time).
          await untilStarted("chunk-0");
          await window.sandbox.cancel(["chunk-0", "chunk-6"]);
          await untilStarted("chunk-2");
          await window.sandbox.cancel(["chunk-2", "not-a-chunk"]);
          return batch;
        },
        [taskFor(code, { timeoutMs: 10_000 }), chunksFor(["wait", "seen", "spin", 1, 2, 3, 4])] as const,
      );
      const cancelled = { kind: "cancelled", message: "the chunk was cancelled" };
      // "seen": the cooperative chunk saw ctx.signal abort with an AbortError, in the same worker.
      expect(results(outcomes)).toEqual([cancelled, "AbortError", cancelled, 2, 4, 6, cancelled]);
    } finally {
      await running.page.evaluate(() => window.sandbox.setThreads(2));
    }
  });

  test("a cancel reaches batches still queued behind the running one", async () => {
    const code = `export default async function work(input, ctx) {
      ctx.progress(0);
      if (input === "wait") await new Promise((resolve) => setTimeout(resolve, 300));
      return input;
    }`;
    // A batch of another task waits for the running one (a batch of the same task would join it).
    const outcomes = await running.page.evaluate(
      async ([task, other, first, second]) => {
        let wake = (): void => {};
        let started = false;
        const running = window.sandbox.runBatch(task, first, {
          onProgress: () => {
            started = true;
            wake();
          },
        });
        const queued = window.sandbox.runBatch(other, second);
        while (!started) await new Promise<void>((resolve) => (wake = resolve));
        await window.sandbox.cancel(["later-1"]);
        return [...(await running), ...(await queued)];
      },
      [taskFor(code), taskFor(`${code}\n// another task`), chunksFor(["wait"]), [0, 1, 2].map((input) => ({ key: `later-${input}`, index: input, input }))] as const,
    );
    expect(outcomes.map((outcome) => outcome.key)).toEqual(["chunk-0", "later-0", "later-1", "later-2"]);
    expect(results(outcomes)).toEqual(["wait", 0, { kind: "cancelled", message: "the chunk was cancelled" }, 2]);
  });

  test("a batch of the running task joins it: idle workers take it without waiting for the first batch's tail", async () => {
    const code = `export default async function work(input) {
      if (input === "slow") await new Promise((resolve) => setTimeout(resolve, 600));
      return input;
    }`;
    const order = await running.page.evaluate(
      async ([task, first, second]) => {
        const ended: string[] = [];
        const running = window.sandbox.runBatch(task, first).then(() => ended.push("first"));
        const joined = window.sandbox.runBatch(task, second).then(() => ended.push("second"));
        await Promise.all([running, joined]);
        return ended;
      },
      // One chunk each: the idle second worker takes the next batch's (a worker holding the slow
      // chunk would take a share of a bigger one behind it: the pipeline).
      [taskFor(code), chunksFor(["slow"]), chunksFor([1]).map((chunk) => ({ ...chunk, key: "next-1" }))] as const,
    );
    expect(order).toEqual(["second", "first"]);
  });
});

describe("CPU share", () => {
  test("a worker rests after each chunk as long as the share asks: half the CPU, about twice the time", async () => {
    const code = `export default function work(ms) { const end = performance.now() + ms; while (performance.now() < end); return ms; }`;
    const elapsed = (cpuPercent: number) =>
      running.page.evaluate(
        async ([task, chunks, share]) => {
          await window.sandbox.setThreads(1);
          await window.sandbox.setCpuPercent(share);
          const started = performance.now();
          await window.sandbox.runBatch(task, chunks);
          return performance.now() - started;
        },
        [taskFor(code), chunksFor(Array(8).fill(50)), cpuPercent] as const,
      );
    try {
      await elapsed(100); // warms the worker up
      const full = await elapsed(100);
      const half = await elapsed(50);
      // 8 chunks of 50 ms: 400 ms, and 7 rests of 50 ms more at 50 %. Compared as a difference,
      // not a ratio: a loaded machine adds its overhead to both runs alike.
      const rests = 7 * 50;
      console.log(`8 chunks of 50 ms: ${Math.round(full)} ms at 100 %, ${Math.round(half)} ms at 50 %`);
      expect(full).toBeGreaterThanOrEqual(400);
      expect(half - full).toBeGreaterThan(0.7 * rests);
      expect(half - full).toBeLessThan(2 * rests);
    } finally {
      await running.page.evaluate(async () => {
        await window.sandbox.setCpuPercent(100);
        await window.sandbox.setThreads(2);
      });
    }
  });
});
