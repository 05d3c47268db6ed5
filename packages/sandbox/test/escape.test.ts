// The escape suite (docs/architecture.md, "The sandbox"): work code that tries every way
// out, run in the sandbox in real Chromium, against a TCP listener, a UDP listener and both origins' request logs.
// The same payloads run outside the sandbox do reach them (the positive control), so a
// sandbox that leaked would fail here.
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { freshUserDataDir } from "@crowdcompute/tooling/chromium";
import type { CDPSession } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ChunkOutcome, SandboxChunk, SandboxTask } from "../src/index.ts";
import { type AttackName, type AttackTarget, attackNames, attackSource } from "./attacks.ts";
import { openVolunteer, type Volunteer } from "./harness.ts";
import { startServers, type TestServers } from "./servers.ts";

const cookieSecret = "cookie-secret-5f2b9c";
const tokenSecret = "eyJhbGciOiJIUzI1NiJ9.jwt-secret-81d4e0.signature";

let servers: TestServers;
let volunteer: Volunteer;
let cdp: CDPSession;
// A profile of its own that keeps storage, as a desktop Chrome's does (harness.ts).
const profile = freshUserDataDir();
let target: AttackTarget;

/** Evaluates in the app page over CDP: Playwright refuses a page whose sandbox frame crashed, CDP does not. */
async function evaluate<T>(expression: string): Promise<T> {
  const reply = (await cdp.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true })) as {
    result: { value?: unknown };
    exceptionDetails?: { exception?: { description?: string } };
  };
  if (reply.exceptionDetails) throw new Error(reply.exceptionDetails.exception?.description ?? JSON.stringify(reply.exceptionDetails));
  return reply.result.value as T;
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
const taskFor = (code: string, timeoutMs = 5000): SandboxTask => ({ taskId: sha256(code), code, codeSha256: sha256(code), timeoutMs });
const chunksFor = (inputs: unknown[]): SandboxChunk[] => inputs.map((input, index) => ({ key: `chunk-${index}`, index, input }));
const runBatch = (task: SandboxTask, inputs: unknown[]): Promise<ChunkOutcome[]> => evaluate(`window.sandbox.runBatch(${JSON.stringify(task)}, ${JSON.stringify(chunksFor(inputs))})`);
const results = (outcomes: ChunkOutcome[]): unknown[] => outcomes.map((outcome) => (outcome.ok ? JSON.parse(outcome.resultJson) : outcome.error));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What every listener has seen so far. */
function traffic() {
  return {
    tcpConnections: servers.listenerConnections(),
    tcpRequests: servers.listenerRequests(),
    udpPackets: servers.udpPackets(),
    appRequests: servers.appRequests(),
    sandboxStray: servers.sandboxStrayRequests(),
  };
}

const attackCode = `${attackSource}\nexport default (input) => globalThis.ccRunAttack(input.name, input.target);`;

beforeAll(async () => {
  servers = await startServers();
  target = { http: servers.listenerUrl, ws: servers.listenerUrl.replace("http:", "ws:"), udpPort: servers.udpPort, app: servers.appOrigin };
  // A small heap makes the heap blow-up quick and light.
  volunteer = await openVolunteer(profile, servers, { args: ["--js-flags=--max-old-space-size=256"] });
  cdp = volunteer.cdp;
  // What a volunteer page holds: a session cookie and the volunteer's JWT.
  await evaluate(`document.cookie = "cc_session=${cookieSecret}; path=/"; localStorage.setItem("crowdcompute.volunteer.token", ${JSON.stringify(tokenSecret)})`);
  // Counts window messages reaching the host after the handshake: the frame never sends any.
  await evaluate(`window.hostMessages = []; addEventListener("message", (event) => hostMessages.push(String(event.origin)))`);
});

afterAll(async () => {
  await volunteer?.close();
  await servers?.close();
  rmSync(profile, { recursive: true, force: true });
});

describe("escape attempts", () => {
  test("from the sandbox reach nothing: no TCP, no UDP, no request to either origin, no secret", async () => {
    const before = traffic();
    const outcomes = await runBatch(
      taskFor(attackCode),
      attackNames.map((name) => ({ name, target })),
    );
    await sleep(1500); // late retries (QUIC, STUN) would land here
    const found = Object.fromEntries(attackNames.map((name, i) => [name, results(outcomes)[i]]));
    console.log("in the sandbox:", found);

    expect(traffic()).toEqual(before);
    expect(await evaluate("hostMessages")).toEqual([]);
    const text = JSON.stringify(found);
    expect(text).not.toContain(cookieSecret);
    expect(text).not.toContain("jwt-secret");
    // Every payload ran (a result string, not a lost chunk) and none of the direct ones succeeded.
    for (const name of attackNames) expect(found[name]).toMatch(/^(completed|failed): /);
    const mustFail: AttackName[] = [
      "fetch-cors",
      "fetch-no-cors",
      "xhr",
      "websocket",
      "eventsource",
      "beacon",
      "webtransport",
      "import-absolute",
      "importScripts",
      "worker-url",
      "nested-blob-worker",
      "function-fetch",
      "eval-fetch",
      "navigate",
      "window-open",
      "webrtc",
    ];
    for (const name of mustFail) expect(found[name], name).toMatch(/^failed: /);
  });

  test("positive control: the same payloads outside the sandbox do reach the listeners", async () => {
    const reachedBy = new Map<AttackName, string[]>();
    for (const name of attackNames) {
      for (const where of ["worker", "window"] as const) {
        const before = traffic();
        // A plain Blob worker, or a fresh same-origin iframe (so `navigate` takes only itself away).
        const run =
          where === "worker"
            ? `new Promise((resolve) => {
                const source = ${JSON.stringify(attackSource)} + "; onmessage = async (e) => postMessage(await ccRunAttack(e.data.name, e.data.target));";
                const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
                worker.onmessage = (event) => { resolve(event.data); setTimeout(() => worker.terminate(), 1000); };
                worker.postMessage({ name: ${JSON.stringify(name)}, target: ${JSON.stringify(target)} });
              })`
            : `new Promise((resolve) => {
                const iframe = document.createElement("iframe");
                iframe.srcdoc = "<!doctype html><title>control</title>";
                iframe.onload = async () => {
                  iframe.onload = null;
                  iframe.contentWindow.eval(${JSON.stringify(attackSource)});
                  resolve(await iframe.contentWindow.ccRunAttack(${JSON.stringify(name)}, ${JSON.stringify(target)}));
                  setTimeout(() => iframe.remove(), 1000);
                };
                document.body.append(iframe);
              })`;
        const outcome = await evaluate<string>(run);
        await sleep(name === "webtransport" || name === "webrtc" ? 1000 : 200);
        const after = traffic();
        const reached =
          after.tcpRequests.length > before.tcpRequests.length ||
          after.appRequests.length > before.appRequests.length ||
          after.udpPackets > before.udpPackets ||
          outcome.includes(cookieSecret) ||
          outcome.includes("jwt-secret");
        if (reached) reachedBy.set(name, [...(reachedBy.get(name) ?? []), where]);
      }
    }
    console.log("outside the sandbox, reached by:", Object.fromEntries(reachedBy));
    expect(attackNames.filter((name) => !reachedBy.has(name))).toEqual([]);
  });

  test("forged messages from work code change nothing outside its own task", async () => {
    // Answers every call the frame makes to this worker with a forged outcome, posts notices for
    // keys it does not own, and offers the frame a port as if it were the host.
    const forger = `export default async function work(input, ctx) {
      if (input !== "forge") return input * 3;
      self.addEventListener("message", (event) => {
        const id = event.data?.id;
        if (id) postMessage({ id, type: "RETURN", value: { type: "RAW", value: { key: "chunk-9", ok: true, resultJson: '"forged"', cpuMs: 1e9 } } });
      });
      for (const key of ["chunk-1", "chunk-2", "other-task-0"]) {
        postMessage({ type: "cc-chunk-start", key });
        postMessage({ type: "cc-chunk-progress", key, fraction: 99, message: "forged" });
      }
      const { port1, port2 } = new MessageChannel();
      postMessage({ type: "cc-sandbox-connect" }, [port2]);
      postMessage({ type: "cc-sandbox-ready" });
      port1.postMessage({ id: "x", type: "APPLY", path: ["ping"], argumentList: [] });
      return "forged everything";
    }`;
    const forged = await runBatch(taskFor(forger), ["forge", 1, 2, 3]);
    expect(forged.map((outcome) => outcome.key)).toEqual(["chunk-0", "chunk-1", "chunk-2", "chunk-3"]);
    // No outcome claims more time than the chunk had, whatever the worker said.
    for (const outcome of forged) expect(outcome.cpuMs).toBeLessThan(5000);
    expect(await evaluate("hostMessages")).toEqual([]);
    // The next task gets fresh workers: nothing the forger left behind answers for it.
    const next = `export default (n, ctx) => ({ index: ctx.index, double: n * 2 });`;
    expect(results(await runBatch(taskFor(next), [1, 2, 3, 4, 5]))).toEqual([1, 2, 3, 4, 5].map((n, index) => ({ index, double: n * 2 })));
  });

  test("an infinite loop, a huge result and a heap blow-up each cost one attempt; the sandbox computes the next task", { timeout: 60_000 }, async () => {
    const hostile = `export default function work(input) {
      if (input === "loop") for (;;) {}
      if (input === "huge") return "x".repeat(2 * 1024 * 1024);
      if (input === "heap") { const hog = []; for (;;) hog.push(new Array(1e6).fill(input.length)); }
      return input + 1;
    }`;
    const first = results(await runBatch(taskFor(hostile, 1000), ["loop", "huge", 41]));
    expect(first).toEqual([
      { kind: "timeout", message: "the chunk ran longer than its timeout of 1000 ms" },
      { kind: "invalid-result", message: expect.stringMatching(/larger than 1048576 bytes/) },
      42,
    ]);
    // Only the chunk that blew the frame's heap fails; the one beside it runs again and computes.
    const crashed = await runBatch(taskFor(hostile, 20_000), ["heap", 1]);
    expect(crashed.map((outcome) => !outcome.ok && outcome.error.kind)).toEqual(["oom", false]);
    expect(results(crashed)[1]).toBe(2);

    const next = `export default (n) => { let sum = 0; for (let i = 1; i <= n; i++) sum += i; return sum; };`;
    expect(results(await runBatch(taskFor(next), [10, 100, 1000]))).toEqual([55, 5050, 500500]);
    // The only window messages: the handshakes of the frames made after the blow-ups (the
    // culprit runs again alone, and kills that frame too).
    const handshakes = await evaluate<string[]>("hostMessages");
    expect(handshakes.length).toBeGreaterThan(0);
    expect(new Set(handshakes)).toEqual(new Set([servers.sandboxOrigin]));
  });
});
