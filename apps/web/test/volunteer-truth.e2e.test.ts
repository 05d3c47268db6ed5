// The volunteer page says one thing at a time, in real Chromium at 1280 px: a started volunteer
// waiting for work is not told to press Start, one held on battery is not "Not started" beside
// a Pause button, the Credit tile shows its whole figure, and the tiles of this browser's
// figures sit in one row. Screenshots go to apps/web/test-artifacts/.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, newCreator, serverAndBrowser, spinningWork, until } from "./helpers.ts";

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url));

/** Each chunk keeps its thread busy for 300 ms: some credit, far less than a CPU hour's hundredth. */
const spinCode = spinningWork(300);

const shot = async (page: Page, name: string) => {
  mkdirSync(artifacts, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${artifacts}${name}.png`, fullPage: true });
};

/** The stat tiles' figures that do not fit their tile (cut off with an ellipsis). */
const cutOff = (page: Page) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>("section strong[data-testid]"))
      .filter((figure) => figure.scrollWidth > figure.clientWidth)
      .map((figure) => `${figure.dataset.testid}: ${figure.textContent}`),
  );

describe(`what the volunteer page says of itself in Chromium (${backend})`, () => {
  const running = serverAndBrowser({ IDLE_RETRY_MS: "300" });

  it("held, waiting and computing, at 1280 px, without contradicting itself", async () => {
    const { server, browser } = running;
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // A device on battery, as the Battery API reports it.
    await context.addInitScript(() => {
      const battery = Object.assign(new EventTarget(), { charging: false, level: 0.5 });
      Object.defineProperty(navigator, "getBattery", { value: () => Promise.resolve(battery), configurable: true });
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));
    await page.goto(`${server.url}/`);
    expect(await page.getByTestId("running-empty").textContent()).toContain("press Start");

    // Started, held on battery: held, not "Not started", and nothing tells it to press Start.
    await page.getByLabel("Only when on power").check();
    await page.getByRole("button", { name: "Start" }).click();
    await page.getByText("Held: this device is on battery.").waitFor();
    await shot(page, "volunteer-held-on-battery-1280");
    expect(await page.getByTestId("state").textContent()).toBe("On hold");
    expect(await page.getByRole("button", { name: "Pause" }).count()).toBe(1);
    expect(await page.getByTestId("running-empty").textContent()).toBe("Nothing runs now: held, this device is on battery.");

    // Started and waiting for work: it says so, and does not ask for a Start it already got.
    await page.getByLabel("Only when on power").uncheck();
    await until("the page to wait for work", async () => (await page.getByTestId("state").getAttribute("data-state")) === "waiting");
    await shot(page, "volunteer-waiting-1280");
    const waiting = await page.getByTestId("running-empty").textContent();
    expect(waiting).not.toContain("press Start");
    expect(waiting).toContain("no work for this browser right now");

    // Computing a little: credit under a hundredth of a CPU hour, shown whole, every tile in one row.
    const creator = await newCreator(server, "truth@example.com");
    const task = await creator.createTask({ name: "spin", code: spinCode, inputs: [1, 2, 3, 4], timeoutMs: 10_000, start: true });
    await until("the task to finish", async () => (await creator.getTask(task.id)).status === "done");
    await until("credit from the server", async () => Number((await page.getByTestId("credit").getAttribute("data-ms")) || 0) > 0);
    await shot(page, "volunteer-credit-1280");
    expect(await page.getByTestId("credit").textContent()).toBe("<0.01 CPU h");
    expect(await cutOff(page)).toEqual([]);
    const tops = await page.locator("#you-heading + div > div").evaluateAll((tiles) => tiles.map((tile) => Math.round(tile.getBoundingClientRect().top)));
    expect(tops).toHaveLength(5);
    expect(new Set(tops).size).toBe(1);
    // A 1280 px window whose page has a classic 16 px scrollbar: still one row, nothing cut off.
    await page.setViewportSize({ width: 1264, height: 900 });
    await shot(page, "volunteer-credit-1264");
    const narrowTops = await page.locator("#you-heading + div > div").evaluateAll((tiles) => tiles.map((tile) => Math.round(tile.getBoundingClientRect().top)));
    expect(new Set(narrowTops).size).toBe(1);
    expect(await cutOff(page)).toEqual([]);

    // Paused: now, and only now, it offers Resume and says that nothing runs.
    await page.getByRole("button", { name: "Pause" }).click();
    await until("the pause", async () => (await page.getByTestId("state").getAttribute("data-state")) === "paused");
    expect(await page.getByTestId("running-empty").textContent()).toContain("press Resume");
    await context.close();
    expect(problems).toEqual([]);
  });
});
