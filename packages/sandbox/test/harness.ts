// Shared by the escape suites: a Chromium profile that allows storage (a persistent one: what
// Playwright's `launch()` gives is off the record, keeps nothing across a restart and so hides
// storage leaks), the app page over CDP (Playwright refuses a page whose sandbox frame
// crashed; CDP does not), and tasks as the host takes them.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type BrowserContext, type CDPSession, chromium, type Page } from "playwright-core";
import type { ChunkOutcome, SandboxChunk, SandboxTask } from "../src/index.ts";

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
