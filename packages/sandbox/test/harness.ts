// Shared by the escape suites: a Chromium profile that allows storage (a persistent one: what
// Playwright's `launch()` gives is off the record, keeps nothing across a restart and so hides
// storage leaks), the app page over CDP (Playwright refuses a page whose sandbox frame
// crashed; CDP does not), and tasks as the host takes them.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromiumArgs, findChromium, freshUserDataDir } from "@crowdcompute/tooling/chromium";
import { type BrowserContext, type CDPSession, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect } from "vitest";
import type { ChunkOutcome, SandboxChunk, SandboxTask } from "../src/index.ts";
import { startServers, type TestServers } from "./servers.ts";

export interface Volunteer {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  /** Evaluates in the app page (awaiting promises, values returned as JSON). */
  evaluate<T>(expression: string): Promise<T>;
  close(): Promise<void>;
}

/**
 * A browser on `profileDir` with the app page open and `window.sandbox` connected.
 * `sandboxOptions` is a JS object literal merged into createSandbox's options.
 */
export async function openVolunteer(profileDir: string, servers: { appOrigin: string; sandboxOrigin: string }, { args = [] as string[], sandboxOptions = "{}", threads = 2 } = {}): Promise<Volunteer> {
  allowThirdPartyStorage(profileDir);
  const context = await chromium.launchPersistentContext(profileDir, { executablePath: findChromium(), args: [...chromiumArgs, ...args] });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${servers.appOrigin}/`);
  const cdp = await context.newCDPSession(page);
  const evaluate = async <T>(expression: string): Promise<T> => {
    const reply = (await cdp.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true })) as {
      result: { value?: unknown };
      exceptionDetails?: { exception?: { description?: string } };
    };
    if (reply.exceptionDetails) throw new Error(reply.exceptionDetails.exception?.description ?? JSON.stringify(reply.exceptionDetails));
    return reply.result.value as T;
  };
  await evaluate(`ccSandbox.createSandbox({ origin: ${JSON.stringify(servers.sandboxOrigin)}, threads: ${threads}, ...${sandboxOptions} }).then((sandbox) => { window.sandbox = sandbox; })`);
  return { context, page, cdp, evaluate, close: () => context.close() };
}

/**
 * A suite's volunteer: the test servers and `openVolunteer` (with `options`) on a fresh profile,
 * started before the tests of the file that calls it, closed and the profile removed after.
 * Read `volunteer` in the tests (it is set by `beforeAll`).
 */
export function volunteerSuite(options?: Parameters<typeof openVolunteer>[2]): { readonly volunteer: Volunteer } {
  const held = {} as { servers: TestServers; volunteer: Volunteer };
  const profile = freshUserDataDir();
  beforeAll(async () => {
    held.servers = await startServers();
    held.volunteer = await openVolunteer(profile, held.servers, options);
  });
  afterAll(async () => {
    await held.volunteer?.close();
    await held.servers?.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return held;
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

export function taskFor(code: string, options: Partial<SandboxTask> = {}): SandboxTask {
  return { taskId: sha256(code), code, codeSha256: sha256(code), timeoutMs: 5000, ...options };
}

export const chunksFor = (inputs: unknown[], prefix = "chunk"): SandboxChunk[] => inputs.map((input, index) => ({ key: `${prefix}-${index}`, index, input }));

export function runBatch(volunteer: Volunteer, task: SandboxTask, chunks: SandboxChunk[]): Promise<ChunkOutcome[]> {
  return volunteer.evaluate(`window.sandbox.runBatch(${JSON.stringify(task)}, ${JSON.stringify(chunks)})`);
}

/** Each outcome's value, or its error. */
export const results = (outcomes: ChunkOutcome[]): unknown[] => outcomes.map((outcome) => (outcome.ok ? JSON.parse(outcome.resultJson) : outcome.error));

/**
 * For the memory budget's suites: runs each named way (`ways[name]()` in work code, which has
 * `MiB`, `touch` and `keep`) in a chunk of its own, then a probe chunk that must run; returns
 * each way's outcome.
 */
export async function runWays(volunteer: Volunteer, family: string, source: string, names: string[]): Promise<Record<string, unknown>> {
  const code = `const MiB = 1024 * 1024;
    const touch = (bytes) => { for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1; return bytes.length; };
    const keep = (count, make) => { const kept = []; for (let i = 0; i < count; i++) kept.push(make(i)); globalThis.kept = kept; return kept.length; };
    const ways = ${source};
    export default async (input) => { if (input === "probe") { globalThis.kept = undefined; return "fine"; } return await ways[input](); };`;
  const task = taskFor(code, { taskId: `memory-${family}`, timeoutMs: 30_000 });
  const found: Record<string, unknown> = {};
  for (const name of names) {
    const [outcome, after] = results(await runBatch(volunteer, task, chunksFor([name, "probe"], name)));
    expect(after, `${family} ${name}: the chunk after it`).toBe("fine");
    found[name] = outcome;
  }
  console.log(`memory, ${family}:`, found);
  return found;
}

/**
 * Runs `source` (a classic script defining what `call` uses) in a plain Blob worker of the app
 * page, outside any sandbox: the positive control. `call` is an expression of the worker's
 * globals, e.g. `ccStorage.write(input)`; its value comes back.
 */
export function runInPlainWorker<T>(volunteer: Volunteer, source: string, call: string, input: unknown): Promise<T> {
  return volunteer.evaluate<T>(`new Promise((resolve, reject) => {
    const source = ${JSON.stringify(source)} + "; onmessage = async (event) => { const input = event.data; try { postMessage({ ok: true, value: await (${call}) }); } catch (err) { postMessage({ ok: false, value: String(err) }); } };";
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    worker.onmessage = (event) => { worker.terminate(); event.data.ok ? resolve(event.data.value) : reject(new Error(event.data.value)); };
    worker.postMessage(${JSON.stringify(input)});
  })`);
}

/**
 * A fresh profile blocks third-party cookies, and with them the storage of a frame of another
 * site (our sandbox frame): "Access is denied for this document". A normal desktop Chrome
 * allows them; this makes the profile do the same, before its first start.
 */
function allowThirdPartyStorage(profileDir: string): void {
  const preferences = join(profileDir, "Default", "Preferences");
  if (existsSync(preferences)) return;
  mkdirSync(join(profileDir, "Default"), { recursive: true });
  writeFileSync(preferences, JSON.stringify({ profile: { cookie_controls_mode: 0, block_third_party_cookies: false } }));
}
