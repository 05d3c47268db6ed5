// The app under its security headers, in Chromium (issue 15): every page runs with no CSP
// violation (the editor, the charts and the sandbox frame included), the API reference page
// renders under its own nonce-based CSP, and a page on another origin cannot frame the app,
// while the same page frames a page that allows it (the control that shows the test can fail).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { RunningServer } from "@crowdcompute/api/node-server";
import { createClient } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, startTestServer, until } from "./helpers.ts";

declare global {
  interface Window {
    cspViolations?: string[];
  }
}

describe(`the app's CSP in Chromium (${backend})`, () => {
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let browser: Browser;
  let framer: Server;
  let framerUrl: string;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    ({ server, close: stopServer } = await startTestServer());
    browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
    // Another origin (another port) that tries to frame the app, and frames a page of its own
    // that allows it, as a control.
    framer = createServer((req, res) => {
      res.setHeader("content-type", "text/html");
      if (req.url === "/own") return res.end("<p id=own>framed fine</p>");
      res.end(`<iframe id=app src="${server.url}/" width=400 height=300></iframe><iframe id=own src="/own"></iframe>`);
    });
    await new Promise<void>((resolve) => framer.listen(0, "127.0.0.1", resolve));
    framerUrl = `http://127.0.0.1:${(framer.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => framer?.close(resolve));
    await stopServer?.();
  });

  async function open(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    // Init scripts run before the page's own and outside its CSP: they only listen.
    await context.addInitScript(() => {
      window.cspViolations = [];
      document.addEventListener("securitypolicyviolation", (event) => {
        window.cspViolations!.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`);
      });
    });
    const page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error" && !/status of 40[14]/.test(message.text())) consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(`page error: ${error.message}`));
    return { context, page };
  }

  const violations = (page: Page) => page.evaluate(() => window.cspViolations ?? []);

  it("runs the volunteer, sign-in, task and editor pages with no CSP violation", async () => {
    const { context, page } = await open();
    const client = createClient({ baseUrl: server.url });
    const session = await client.register("csp@example.com", "a long password");
    await page.goto(`${server.url}/`);
    await page.getByRole("button", { name: "Start" }).waitFor();
    expect(await violations(page), "/").toEqual([]);
    // Signed in (the first account is the admin): the editor, and a test run in the sandbox frame (frame-src).
    await page.evaluate((value) => localStorage.setItem("crowdcompute.session", JSON.stringify(value)), session);
    await page.goto(`${server.url}/tasks/new`);
    const editor = page.getByRole("textbox", { name: "Work code" });
    await editor.waitFor();
    expect(await page.locator(".cm-editor .tok-keyword, .cm-editor [class*='ͼ']").count()).toBeGreaterThan(0); // CodeMirror's styles applied
    await page.getByLabel("Inputs (JSON array, one element per chunk)").fill("[1, 2]");
    await page.getByRole("button", { name: "Test run" }).click();
    await page.getByTestId("test-run-summary").waitFor({ timeout: 30_000 });
    expect(await page.getByTestId("test-run-summary").textContent()).toContain("2 of 2 chunks succeeded");
    for (const path of ["/tasks", "/keys", "/monitor", "/signin"]) {
      await page.goto(`${server.url}${path}`);
      await page.locator("main").waitFor();
      expect(await violations(page), path).toEqual([]);
    }
    expect(consoleErrors).toEqual([]);
    await context.close();
  });

  it("renders the API reference page under its nonce-based CSP", async () => {
    const { context, page } = await open();
    await page.goto(`${server.url}/api/docs`);
    await until("the reference to render the API's operations", async () => (await page.getByText("Create a task", { exact: true }).count()) > 0, 60_000);
    // Scalar's bundled zod probes `Function("")` to choose its compiled validators, and falls
    // back when the CSP refuses (the page renders above): the one refusal allowed, eval stays off.
    const refused = await violations(page);
    expect(refused.filter((v) => !/^script-src blocked eval at .*\/api\/docs\/scalar\.js:/.test(v))).toEqual([]);
    await context.close();
  });

  it("cannot be framed by another origin", async () => {
    const { context, page } = await open();
    await page.goto(framerUrl);
    const own = page.frameLocator("#own").locator("#own");
    await own.waitFor(); // the control: this page can frame what allows it
    expect(await own.textContent()).toBe("framed fine");
    const appFrame = await (await page.$("#app"))!.contentFrame();
    await until("the app frame to settle", async () => appFrame!.url() !== "about:blank");
    // Chromium shows its error page in place of a frame its headers refuse.
    expect(appFrame!.url()).not.toContain(server.url);
    expect(await appFrame!.locator("#root").count()).toBe(0);
    // What Chromium logged about it was the refusal, nothing else.
    expect(consoleErrors.splice(0).every((text) => /frame-ancestors|X-Frame-Options|refused to connect/i.test(text))).toBe(true);
    await context.close();
  });
});
