// The creator's whole path in Chromium, driven as a person would: sign up, write a task in
// the editor, test-run it in the page's own sandbox, publish it, let a volunteer page (another
// browser context) compute it, watch it finish live, download the results. Each page is
// saved as a screenshot under apps/web/test-artifacts/ at desktop and phone widths.
import { mkdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RunningServer } from "@crowdcompute/api/node-server";
import { createClient } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, startTestServer, until } from "./helpers.ts";

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const desktop = { width: 1280, height: 900 };
const phone = { width: 390, height: 844 };

const squaresCode = `// squares, written in the editor
export default function work(input, ctx) {
  if (input < 0) throw new Error("negative input " + input);
  return { square: input * input };
}

export function reduce(results) {
  return results.reduce((sum, r) => sum + (typeof r === "number" ? r : r.square), 0);
}
`;
const chunkCount = 30;
const inputs = Array.from({ length: chunkCount }, (_, i) => i + 1);

/** Console errors the test provoked on purpose: the browser logs each failed request. */
const expectedConsole = /^Failed to load resource: the server responded with a status of (401|422)/;

describe(`the creator pages in Chromium (${backend})`, () => {
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let browser: Browser;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    ({ server, close: stopServer } = await startTestServer({ LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" }));
    browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
  });

  afterAll(async () => {
    await browser?.close();
    await stopServer?.();
  });

  async function open(viewport = desktop): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && !expectedConsole.test(message.text())) problems.push(`console error: ${message.text()}`);
    });
    return { context, page };
  }

  const shot = async (page: Page, name: string) => {
    // From the top, so the sticky header sits where it belongs in a full-page capture.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${artifacts}${name}.png`, fullPage: true });
  };

  it("signs up, test-runs a task from the editor, publishes it, and downloads what a volunteer computed", async () => {
    const { context, page } = await open();

    // A signed-out visit to /tasks lands on the sign-in page; empty fields get inline messages.
    await page.goto(`${server.url}/tasks`);
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByRole("button", { name: "Create account" }).click();
    await expect.poll(() => page.getByText("Enter an email address").isVisible()).toBe(true);
    await page.getByLabel("Email").fill("ada@example.com");
    await page.getByLabel("Password").fill("short");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect.poll(() => page.getByText("Use at least 8 characters.").isVisible()).toBe(true);
    await shot(page, "signup-errors");
    await page.getByLabel("Password").fill("a long password");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${server.url}/tasks`);
    await page.getByText("No tasks yet.").waitFor();

    // Sign out and in again: a wrong password shows the server's problem, inline.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByLabel("Email").fill("ada@example.com");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "wrong email or password" }).waitFor();
    await shot(page, "signin-problem");
    await page.getByLabel("Password").fill("a long password");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(`${server.url}/tasks`);
    // The first account of an embedded server is its admin.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Monitor" }).waitFor();
    await shot(page, "tasks-empty");

    // New task: the editor starts with the example; write our own code into it.
    await page.getByRole("link", { name: "New task" }).click();
    await page.waitForURL(`${server.url}/tasks/new`);
    const editor = page.getByRole("textbox", { name: "Work code" });
    expect(await editor.textContent()).toContain("export default async function work");
    expect(await page.locator(".cm-editor .tok-keyword, .cm-editor [class*='ͼ']").count()).toBeGreaterThan(0); // highlighted
    await editor.fill(squaresCode);
    expect(await editor.textContent()).toContain("negative input");
    await page.getByLabel("Name").fill("Squares");

    // Bad inputs get a message; a test run shows results, errors and timings.
    const inputsBox = page.getByLabel("Inputs (JSON array, one element per chunk)");
    // Bad JSON is flagged while typing, and a test run says so in its own card.
    await inputsBox.fill("[1, 2,");
    await page.locator("p", { hasText: "Not valid JSON" }).waitFor();
    await page.getByRole("button", { name: "Test run" }).click();
    await page.getByRole("alert").filter({ hasText: "The inputs are not valid" }).filter({ hasText: "Not valid JSON" }).waitFor();
    await inputsBox.fill("[-4, 5, 6]");
    await page.getByRole("button", { name: "Test run" }).click();
    await page.getByTestId("test-run-summary").waitFor({ timeout: 30_000 });
    expect(await page.getByTestId("test-run-summary").textContent()).toContain("2 of 3 chunks succeeded, 1 failed");
    expect(await page.getByTestId("test-error").textContent()).toContain("negative input -4");
    expect(await page.getByTestId("test-result").allTextContents()).toEqual(['{"square":25}', '{"square":36}']);

    await inputsBox.fill(JSON.stringify(inputs));
    await page.getByLabel("Chunks to test").fill("4");
    await page.getByRole("button", { name: "Test run" }).click();
    await until("the second test run", async () => (await page.getByTestId("test-run-summary").textContent())?.includes("4 of 4 chunks succeeded") ?? false, 30_000);
    expect(await page.getByTestId("test-result").allTextContents()).toEqual(['{"square":1}', '{"square":4}', '{"square":9}', '{"square":16}']);
    expect(await page.getByTestId("inputs-summary").textContent()).toBe(`${chunkCount} chunks`);

    // Options are checked before anything is sent...
    await page.getByLabel("Quorum").fill("2");
    await page.getByRole("button", { name: "Publish and start" }).click();
    await page.getByText("Quorum can be at most the replication.").waitFor();
    await shot(page, "new-task-test-run");
    await page.getByLabel("Quorum").fill("1");

    // ...and what only the server can tell (a syntax error, with its line) is shown, not swallowed.
    await editor.fill("export default function work(input) {\n  return input +;\n}\n");
    await page.getByRole("button", { name: "Publish and start" }).click();
    await page.getByRole("alert").filter({ hasText: "code does not parse" }).waitFor();
    expect(await page.getByRole("alert").filter({ hasText: "code does not parse" }).textContent()).toContain("line 2");
    await shot(page, "new-task-server-problem");
    await editor.fill(squaresCode);

    await page.getByRole("button", { name: "Publish and start" }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    const taskId = page.url().split("/").at(-1)!;
    await page.getByTestId("task-status").filter({ hasText: "running" }).waitFor();
    expect(await page.getByTestId("progress-text").textContent()).toContain(`0 of ${chunkCount} chunks`);

    // A volunteer, in its own browser context, computes the task; the task page follows live (SSE).
    const volunteer = await open();
    await volunteer.page.goto(`${server.url}/`);
    await volunteer.page.getByRole("slider", { name: "Threads" }).fill("2");
    await volunteer.page.getByRole("button", { name: "Start" }).click();
    await page.getByTestId("task-status").filter({ hasText: "done" }).waitFor({ timeout: 90_000 });
    expect(await page.getByTestId("progress-text").textContent()).toContain(`${chunkCount} of ${chunkCount} chunks`);
    expect(await page.getByTestId("count-done").textContent()).toBe(String(chunkCount));
    const sum = inputs.reduce((s, n) => s + n * n, 0);
    await until("the aggregate", async () => (await page.getByTestId("aggregate").textContent())?.includes(String(sum)) ?? false, 60_000);
    await shot(page, "task-done");

    await until("the volunteer's figures", async () => Number(await volunteer.page.getByTestId("chunks-done").textContent()) >= chunkCount);
    await until("the site-wide figures", async () => (await volunteer.page.getByTestId("volunteers-online").textContent()) === "1", 30_000);
    await volunteer.page.getByRole("table", { name: "Leaderboard" }).getByText("(you)").waitFor({ timeout: 30_000 });
    await shot(volunteer.page, "volunteer-working");
    await volunteer.page.getByRole("button", { name: "Pause" }).click();
    await until("the volunteer to pause", async () => (await volunteer.page.getByTestId("state").textContent()) === "Paused");

    // Downloads: NDJSON and CSV, every chunk with its result.
    const [ndjson] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download NDJSON" }).click()]);
    expect(ndjson.suggestedFilename()).toMatch(/^Squares-[0-9a-f]{8}\.ndjson$/);
    const lines = readFileSync((await ndjson.path())!, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { index: number; status: string; result: { square: number } });
    expect(lines.map((line) => line.index)).toEqual(inputs.map((_, i) => i));
    expect(lines.every((line, i) => line.status === "done" && line.result.square === inputs[i]! ** 2)).toBe(true);
    const [csv] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
    const rows = readFileSync((await csv.path())!, "utf8")
      .trim()
      .split("\r\n");
    expect(rows[0]).toBe("index,status,input,result,error");
    expect(rows).toHaveLength(chunkCount + 1);
    expect(rows[3]).toBe(`2,done,"3","{""square"":9}",`);

    // The list shows it done; Clone opens a copy in the task form, saved as a draft, which we then delete.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks" }).click();
    await page.getByRole("link", { name: "Squares" }).waitFor();
    await shot(page, "tasks-list");
    await page.getByRole("link", { name: "Squares" }).click();
    await page.getByRole("button", { name: "Clone" }).click();
    await page.waitForURL(`${server.url}/tasks/new?from=${taskId}`);
    await expect.poll(() => page.getByLabel("Name").inputValue()).toBe("Copy of Squares");
    expect(await page.getByRole("radio", { name: "Same inputs as the original" }).isChecked()).toBe(true);
    expect(await page.getByTestId("inputs-summary").textContent()).toBe(`${chunkCount} chunks, the inputs of “Squares”`);
    // Its options are the original's and editable, the memory budget too.
    expect(await page.getByLabel("Memory per worker (MiB)").inputValue()).toBe("256");
    await page.getByLabel("Memory per worker (MiB)").fill("512");
    await page.getByRole("button", { name: "Save as draft" }).click();
    await until("the clone's page", async () => !page.url().endsWith(taskId) && /\/tasks\/[0-9a-f-]{36}$/.test(page.url()));
    await page.getByTestId("task-status").filter({ hasText: "draft" }).waitFor();
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toContain("Copy of Squares");
    await page.getByText("512 MiB per worker").waitFor();
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete task" }).click();
    await page.waitForURL(`${server.url}/tasks`);
    await until("the list to hold only the original", async () => (await page.getByRole("list", { name: "Tasks" }).getByRole("listitem").count()) === 1);

    // API keys: minted once, listed by prefix, revoked.
    await page.getByRole("link", { name: "API keys" }).click();
    // Exact: the task list asks an unnamed creator for "Your name for volunteers", which a
    // loose "Name" also matches while the keys page is still on its way.
    await page.waitForURL(`${server.url}/keys`);
    await page.getByLabel("Name", { exact: true }).fill("laptop CLI");
    await page.getByRole("button", { name: "Create key" }).click();
    const key = await page.getByTestId("new-api-key").textContent();
    expect(key?.length).toBeGreaterThan(20);
    await page.getByRole("table", { name: "API keys" }).getByText("laptop CLI").waitFor();
    await shot(page, "api-keys");
    // Revoking asks first.
    await page.getByRole("button", { name: "Revoke laptop CLI" }).click();
    await page.getByRole("alertdialog", { name: "Revoke laptop CLI?" }).getByRole("button", { name: "Keep" }).click();
    expect(await page.getByRole("table", { name: "API keys" }).getByText("revoked").count()).toBe(0);
    await page.getByRole("button", { name: "Revoke laptop CLI" }).click();
    await page.getByRole("button", { name: "Revoke key" }).click();
    await page.getByRole("table", { name: "API keys" }).getByText("revoked").waitFor();

    // The monitor (admin): site-wide figures and every task.
    await page.getByRole("link", { name: "Monitor" }).click();
    await page.getByRole("table", { name: "All tasks" }).getByRole("link", { name: "Squares" }).waitFor();
    await until("the monitor's figures", async () => (await page.getByTestId("site-failure-rate").textContent()) === "0.0 %", 30_000);
    // Accounts: suspend another creator, then lift it.
    await createClient({ baseUrl: server.url }).register("bob@example.com", "another long password");
    const accounts = page.getByRole("table", { name: "Accounts" });
    await page.getByRole("button", { name: "Suspend bob@example.com" }).click({ timeout: 30_000 });
    await accounts.getByRole("row").filter({ hasText: "bob@example.com" }).getByText("suspended").waitFor();
    await shot(page, "monitor");
    await page.getByRole("button", { name: "Lift the suspension of bob@example.com" }).click();
    await accounts.getByRole("row").filter({ hasText: "bob@example.com" }).getByText("active").waitFor();

    // Phone width: the menu opens the navigation; each page fits.
    const mobile = await open(phone);
    await mobile.page.goto(`${server.url}/signin`);
    await mobile.page.getByLabel("Email").fill("ada@example.com");
    await mobile.page.getByLabel("Password").fill("a long password");
    await mobile.page.getByRole("button", { name: "Sign in", exact: true }).click();
    await mobile.page.waitForURL(`${server.url}/tasks`);
    await mobile.page.getByRole("link", { name: "Squares" }).waitFor();
    await shot(mobile.page, "phone-tasks");
    await mobile.page.getByRole("button", { name: "Menu" }).click();
    await shot(mobile.page, "phone-menu");
    await mobile.page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Volunteer" }).click();
    await mobile.page.getByRole("button", { name: "Start" }).waitFor();
    await shot(mobile.page, "phone-volunteer");
    for (const [path, name, ready] of [
      [`/tasks/${taskId}`, "phone-task", "Download CSV"],
      ["/tasks/new", "phone-new-task", "Test run"],
      ["/keys", "phone-api-keys", "Create key"],
      ["/monitor", "phone-monitor", null],
    ] as const) {
      await mobile.page.goto(`${server.url}${path}`);
      if (ready) await mobile.page.getByRole("button", { name: ready }).waitFor();
      else await mobile.page.getByRole("table", { name: "All tasks" }).getByRole("link", { name: "Squares" }).waitFor();
      const wide = await mobile.page.evaluate(() => {
        const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= width) return [];
        // The innermost elements that stick out, to say what to fix.
        return Array.from(document.querySelectorAll("body *"))
          .filter((el) => el.getBoundingClientRect().right > width + 0.5 && !Array.from(el.children).some((c) => c.getBoundingClientRect().right > width + 0.5))
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)}px)`);
      });
      expect(wide, `${path} scrolls sideways on a phone`).toEqual([]);
      await shot(mobile.page, name);
    }

    await mobile.context.close();
    await volunteer.context.close();
    await context.close();
    expect(problems).toEqual([]);
  });

  it("is installable: a manifest, and a service worker that keeps the shell but never /api", async () => {
    const { context, page } = await open();
    await page.goto(`${server.url}/`);
    const manifest = await page.evaluate(async () => {
      const href = document.querySelector<HTMLLinkElement>('link[rel="manifest"]')!.href;
      return (await fetch(href)).json() as Promise<{ start_url: string; display: string; icons: { src: string }[] }>;
    });
    expect(manifest.start_url).toBe("/");
    expect(manifest.display).toBe("standalone");
    await until("the service worker to control the page", async () => {
      await page.reload();
      return page.evaluate(() => navigator.serviceWorker.controller !== null);
    });
    // Use the API through the controlled page, then look in every cache.
    await page.evaluate(() => fetch("/api/stats").then((r) => r.json()));
    const cached = await page.evaluate(async () => {
      const urls: string[] = [];
      for (const name of await caches.keys()) for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
      return urls;
    });
    expect(cached).toContain("/");
    expect(cached.some((path) => path.startsWith("/assets/"))).toBe(true);
    expect(cached.filter((path) => path.startsWith("/api"))).toEqual([]);
    await context.close();
    expect(problems).toEqual([]);
  });
});
