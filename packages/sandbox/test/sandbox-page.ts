// Shared by the suites that drive the sandbox from one ordinary Playwright page: the test
// servers, a Chromium, and the app page with `window.sandbox` connected; started before the
// tests of the file that calls `sandboxPage`, closed after.
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import type * as HostModule from "../src/host.ts";
import type { Sandbox } from "../src/index.ts";
import { startServers, type TestServers } from "./servers.ts";

declare global {
  interface Window {
    ccSandbox: typeof HostModule;
    sandbox: Sandbox;
  }
}

export interface SandboxPage {
  readonly servers: TestServers;
  readonly browser: Browser;
  readonly page: Page;
}

/** Read the fields in the tests (they are set by `beforeAll`). */
export function sandboxPage({ threads, args = [] }: { threads: number; args?: string[] }): SandboxPage {
  const held = {} as { servers: TestServers; browser: Browser; page: Page };
  beforeAll(async () => {
    held.servers = await startServers();
    held.browser = await chromium.launch({ executablePath: findChromium(), args: [...chromiumArgs, ...args] });
    held.page = await held.browser.newPage();
    await held.page.goto(`${held.servers.appOrigin}/`);
    await held.page.evaluate(
      async ([origin, count]) => {
        window.sandbox = await window.ccSandbox.createSandbox({ origin, threads: count });
      },
      [held.servers.sandboxOrigin, threads] as const,
    );
  });
  afterAll(async () => {
    await held.browser?.close();
    await held.servers?.close();
  });
  return held;
}
