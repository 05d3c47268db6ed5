// The task page tells the truth, in real Chromium against the real server: chunks at
// volunteers show under "Chunks running now" though they report no progress, a finished task
// says how many volunteers computed it (not "Volunteers 0"), and a retry-failed that succeeds
// leaves no old "Last error" behind.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient, type Session } from "@crowdcompute/sdk";
import type { Browser, BrowserContext } from "playwright-core";
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, serverAndBrowser, signIn, spinningWork, until } from "./helpers.ts";

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url));

/** A chunk of about a second that reports no progress. */
const quietCode = spinningWork(1000);

async function volunteer(browser: Browser, url: string): Promise<BrowserContext> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.getByRole("slider", { name: "Threads" }).fill("1");
  await page.getByRole("button", { name: "Start" }).click();
  await until("the volunteer to wait for work", async () => (await page.getByTestId("state").getAttribute("data-state")) === "waiting");
  return context;
}

describe(`the task page's truth in Chromium (${backend})`, () => {
  const running = serverAndBrowser({ IDLE_RETRY_MS: "300" });

  async function creatorPage(email: string) {
    const { server, browser } = running;
    const session: Session = await createClient({ baseUrl: server.url }).register(email, "a long password", "Truth Lab");
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await signIn(context, server, session);
    const page = await context.newPage();
    return { client: createClient({ baseUrl: server.url, token: session.token }), context, page };
  }

  it("lists chunks at volunteers without progress, then says how many volunteers computed the task", async () => {
    const { server, browser } = running;
    const { client, context, page } = await creatorPage("running@example.com");
    const volunteers = [await volunteer(browser, server.url), await volunteer(browser, server.url)];
    const task = await client.createTask({ name: "quiet", code: quietCode, inputs: Array.from({ length: 16 }, (_, i) => i), timeoutMs: 20_000, start: true });
    mkdirSync(artifacts, { recursive: true });
    await page.goto(`${server.url}/tasks/${task.id}`);

    // No chunk reports progress, yet the chunks at volunteers are listed.
    const chunk = page.getByTestId("running-chunk").first();
    await chunk.waitFor({ timeout: 30_000 });
    await page.screenshot({ path: `${artifacts}task-running-chunks-1280.png`, fullPage: true });
    expect(await chunk.textContent()).toContain("at a volunteer, no progress reported");
    expect(await chunk.getAttribute("data-progress")).toBe("");

    await until("the task to finish", async () => (await client.getTask(task.id)).status === "done", 90_000);
    const done = await client.getTask(task.id);
    expect(done.volunteers).toBe(0);
    expect(done.computedBy).toBe(2);
    await expect.poll(() => page.getByTestId("computed-by").textContent(), { timeout: 10_000 }).toBe("2 volunteers");
    expect(await page.getByTestId("count-volunteers").count()).toBe(0);
    // The tile shows its whole figure at 1280 px.
    await page.screenshot({ path: `${artifacts}task-computed-by-1280.png`, fullPage: true });
    expect(await page.getByTestId("computed-by").evaluate((figure) => figure.scrollWidth <= figure.clientWidth)).toBe(true);
    expect(await page.getByTestId("running-chunk").count()).toBe(0);
    for (const other of volunteers) await other.close();
    await context.close();
  });

  it("clears the last error when a retry-failed succeeds", async () => {
    const { server, browser } = running;
    const { client, context, page } = await creatorPage("retrier@example.com");
    // Chunk 3 fails until a moment after the task is made (its cause fixed, as it were), on its one attempt.
    const fixedAt = Date.now() + 8000;
    const code = `export default (x) => { if (x === 3 && Date.now() < ${fixedAt}) throw new Error("not yet"); return x; }`;
    const task = await client.createTask({ name: "flaky", code, inputs: [1, 2, 3, 4], maxAttempts: 1, timeoutMs: 10_000, start: true });
    const volunteerContext = await volunteer(browser, server.url);
    const failed = await until("the task to finish with one failure", async () => {
      const view = await client.getTask(task.id);
      return view.status === "failed" || view.status === "done" ? view : null;
    });
    expect(failed.counts.failed).toBe(1);
    expect(failed.lastError).toMatchObject({ index: 2, message: expect.stringContaining("not yet") });
    await page.goto(`${server.url}/tasks/${task.id}`);
    await page.getByTestId("last-error").waitFor();

    // Once the cause is gone, Retry failed computes the chunk again, and no error remains.
    await until("the cause to be fixed", async () => Date.now() > fixedAt + 500);
    await page.getByRole("button", { name: "Retry failed" }).click();
    await until("the retried chunk to be done", async () => (await client.getTask(task.id)).counts.done === 4, 60_000);
    const after = await client.getTask(task.id);
    expect(after.counts).toMatchObject({ done: 4, failed: 0 });
    expect(after.lastError).toBeNull();
    await expect.poll(() => page.getByTestId("last-error").count(), { timeout: 10_000 }).toBe(0);
    expect(await page.getByText("No errors so far.").count()).toBe(1);
    await volunteerContext.close();
    await context.close();
  });
});
