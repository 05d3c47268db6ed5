// The task page's newest results, live, in Chromium: a volunteer (over HTTP, so the test says
// when each result lands) reports chunks while the page is open, and the page shows each one
// as it is decided, newest first, failures with their error, until the task ends.
import type { RunningServer } from "@crowdcompute/api/node-server";
import { type BlockChunk, blockReports, type Client, chunksOfLeases, createClient, type Session } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, signIn, startTestServer, until } from "./helpers.ts";

describe(`the task page's live results in Chromium (${backend})`, () => {
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let browser: Browser;
  let session: Session;
  let creator: Client;
  const problems: string[] = [];

  beforeAll(async () => {
    ({ server, close: stopServer } = await startTestServer());
    browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
    const anonymous = createClient({ baseUrl: server.url });
    session = await anonymous.register("live-results@example.com", "a long password");
    creator = anonymous.withToken(session.token);
  });

  afterAll(async () => {
    await browser?.close();
    await stopServer?.();
  });

  const rowIndexes = async (page: Page) =>
    (await page
      .getByRole("table", { name: "Newest results" })
      .locator("tbody tr")
      .evaluateAll((rows) => rows.map((row) => Number(row.getAttribute("data-index"))))) as number[];

  it("shows each result as it is decided, newest first, and says when the task has ended", async () => {
    const total = 40;
    const task = await creator.createTask({ name: "live", code: "export default (x) => x", inputs: Array.from({ length: total }, (_, i) => i), maxAttempts: 1, start: true });
    const volunteer = createClient({ baseUrl: server.url, token: (await creator.createVolunteer("http volunteer")).token });
    const report = (chunks: BlockChunk[]) =>
      volunteer.submitResults(
        blockReports(chunks.map((chunk) => (chunk.index === total - 2 ? { chunk, error: { kind: "throw" as const, message: "no luck" } } : { chunk, result: { twice: (chunk.input as number) * 2 } }))),
      );

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await signIn(context, server, session);
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => void (message.type() === "error" && problems.push(`console error: ${message.text()}`)));
    await page.goto(`${server.url}/tasks/${task.id}`);
    const status = page.getByTestId("live-results-status");
    await status.and(page.locator('[data-state="live"]')).waitFor();

    // The page follows from when it opened: report one chunk at a time until one shows.
    let reported = 0;
    await until("the first live result", async () => {
      const [chunk] = chunksOfLeases((await volunteer.lease({ max: 1, capabilities: { threads: 1 } })).leases);
      await report([chunk!]);
      reported += 1;
      try {
        await page.getByRole("table", { name: "Newest results" }).waitFor({ timeout: 1500 });
        return true;
      } catch {
        return false;
      }
    });
    const firstShown = await rowIndexes(page);
    expect(firstShown.length).toBeGreaterThanOrEqual(1);

    // The next ten, while the task still runs: each shows, the newest at the top.
    const next: BlockChunk[] = [];
    while (next.length < 10) next.push(...chunksOfLeases((await volunteer.lease({ max: 10 - next.length, capabilities: { threads: 8 } })).leases));
    await report(next);
    const live = await until("the ten to show", async () => {
      const shown = await rowIndexes(page);
      return next.every((chunk) => shown.includes(chunk.index)) ? shown : null;
    });
    expect(live.slice(0, 10).sort((a, b) => a - b)).toEqual(next.map((chunk) => chunk.index).sort((a, b) => a - b));
    expect((await creator.getTask(task.id)).status).toBe("running");
    expect(await page.getByTestId("task-status").textContent()).toContain("running");

    // The rest, one failing: the page keeps the newest twenty, and then the task has ended.
    const rest: BlockChunk[] = [];
    for (let left = total - reported - 10; left > 0; left = total - reported - 10 - rest.length) {
      rest.push(...chunksOfLeases((await volunteer.lease({ max: left, capabilities: { threads: 32 } })).leases));
    }
    await report(rest);
    await status.and(page.locator('[data-state="ended"]')).waitFor({ timeout: 30_000 });
    const decidedSinceOpen = Number(await status.getAttribute("data-count"));
    expect(decidedSinceOpen).toBeGreaterThanOrEqual(11 + rest.length);
    expect(decidedSinceOpen).toBeLessThanOrEqual(total);
    const last = await rowIndexes(page);
    expect(last).toHaveLength(20);
    expect(new Set(last).size).toBe(20);
    // The newest twenty are all of the last report (it holds more than twenty).
    expect(rest.length).toBeGreaterThanOrEqual(20);
    const restIndexes = new Set(rest.map((chunk) => chunk.index));
    expect(last.filter((index) => !restIndexes.has(index))).toEqual([]);
    const failedRow = page.locator(`tr[data-index="${total - 2}"]`);
    expect(await failedRow.textContent()).toContain("throw: no luck");
    expect(await page.locator(`tr[data-index="${last[0]}"]`).textContent()).toMatch(/\{"twice":\d+\}|throw: no luck/);
    await page.getByTestId("task-status").filter({ hasText: "done" }).waitFor();
    await context.close();
    expect(problems).toEqual([]);
  });
});
