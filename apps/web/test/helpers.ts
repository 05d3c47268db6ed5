// Shared by the browser tests: a real server on free ports over a fresh database, and polling.
import { parseEnv } from "@crowdcompute/api/env";
import { type RunningServer, startServer } from "@crowdcompute/api/node-server";
import { openTestDb, type TestDb, testBackends } from "@crowdcompute/db/testing";
import { type Client, createClient, type Session } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll } from "vitest";

/** One database is enough for a browser test: the real server when there is one. */
export const browserTestBackend = testBackends().at(-1)!;

/** The Node entry's server, in process, on free ports, over a fresh database of `browserTestBackend`. */
export async function startTestServer(env: Record<string, string> = {}): Promise<{ server: RunningServer; testDb: TestDb; close(): Promise<void> }> {
  const testDb = await openTestDb(browserTestBackend);
  // Every browser of the suite mints its volunteer from loopback: the minting limits raised (docs/architecture.md, "Minting volunteers").
  const parsed = parseEnv({ PORT: "0", VOLUNTEER_MINT_PER_HOUR: "100000", VOLUNTEER_MINT_PER_DAY: "100000", ...env });
  const server = await startServer({ db: testDb.handle.db, env: { ...parsed, jwtSecret: "browser-test-secret-browser-test-secret", embedded: true } });
  return {
    server,
    testDb,
    close: async () => {
      await server.close();
      await testDb.dispose();
    },
  };
}

/** Polls `probe` every 100 ms until it gives a truthy value; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A test server (`startTestServer(env)`) and a Chromium for the tests of the describe block
 * that calls it: started before them, closed after. Read `server` and `browser` in the tests.
 */
export function serverAndBrowser(env: Record<string, string> = {}): { readonly server: RunningServer; readonly browser: Browser } {
  const held = {} as { server: RunningServer; browser: Browser; close?: () => Promise<void> };
  beforeAll(async () => {
    const started = await startTestServer(env);
    held.server = started.server;
    held.close = started.close;
    held.browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
  });
  afterAll(async () => {
    await held.browser?.close();
    await held.close?.();
  });
  return held;
}

/** A new creator account on `server`: a client signed in as it. */
export async function newCreator(server: RunningServer, email: string, name?: string): Promise<Client> {
  const anonymous = createClient({ baseUrl: server.url });
  return anonymous.withToken((await anonymous.register(email, "a long password", name)).token);
}

/**
 * Every page `context` opens is signed in as `session`: the app's own pages only (the sandbox
 * frame, another origin, has no storage to touch).
 */
export async function signIn(context: BrowserContext, server: RunningServer, session: Session): Promise<void> {
  await context.addInitScript(([origin, value]) => location.origin === origin && localStorage.setItem("crowdcompute.session", value), [server.url, JSON.stringify(session)] as const);
}

/** Work code whose chunks keep their thread busy for `ms` (checking nothing), then return `result` (an expression of `input`). */
export function spinningWork(ms: number, result = "input"): string {
  return `export default function work(input) {
  const end = performance.now() + ${ms};
  while (performance.now() < end) {}
  return ${result};
}`;
}
