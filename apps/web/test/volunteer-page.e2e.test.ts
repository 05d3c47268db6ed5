// What a volunteer sees of itself, in real Chromium against the real server: what runs on its
// machine now (task, creator, chunks, ctx.progress, time so far), the recent tasks it worked
// for, its name on the leaderboard (its own, or its account's), totals that survive a reload,
// credit in CPU hours, and a daily schedule that holds it back and is remembered. Screenshots
// of the page at desktop and phone widths go to apps/web/test-artifacts/.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RunningServer } from "@crowdcompute/api/node-server";
import { type Client, createClient } from "@crowdcompute/sdk";
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, newCreator, serverAndBrowser, until } from "./helpers.ts";

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const desktop = { width: 1280, height: 900 };
const phone = { width: 390, height: 844 };

/** A chunk of ~2.5 s that says how far it is, ten times. */
const steppedCode = `
export default async function work(input, ctx) {
  for (let step = 1; step <= 10; step++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    ctx.progress(step / 10, "step " + step + " of 10");
  }
  return input * 2;
}`;

describe(`the volunteer page in Chromium (${backend})`, () => {
  const running = serverAndBrowser({ LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" });
  let server: RunningServer;
  let browser: Browser;
  let creator: Client;
  const problems: string[] = [];

  beforeAll(async () => {
    ({ server, browser } = running);
    mkdirSync(artifacts, { recursive: true });
    creator = await newCreator(server, "lab@example.com", "Grace Lab");
  });

  async function open(viewport = desktop) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    return { context, page };
  }

  const shot = async (page: Page, name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${artifacts}${name}.png`, fullPage: true });
  };
  const figure = async (page: Page, id: string, attribute = "data-value") => Number(await page.getByTestId(id).getAttribute(attribute));

  it("shows what runs now, the tasks it worked for, its name, and totals that survive a reload", async () => {
    const task = await creator.createTask({
      name: "Stepped squares",
      description: "Doubles numbers slowly.",
      code: steppedCode,
      inputs: Array.from({ length: 8 }, (_, i) => i),
      timeoutMs: 20_000,
      start: true,
    });
    const { context, page } = await open();
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.getByTestId("running-empty").textContent()).toContain("Nothing runs now");
    await page.getByRole("slider", { name: "Threads" }).fill("2");
    await page.getByRole("button", { name: "Start" }).click();

    // What runs: the task by name and creator, its chunks, their progress and the time so far.
    const part = page.getByTestId("running-part").first();
    await part.waitFor({ timeout: 30_000 });
    expect(await part.getAttribute("data-task-id")).toBe(task.id);
    await expect.poll(() => part.textContent(), { timeout: 15_000 }).toContain("Stepped squares");
    expect(await part.textContent()).toContain("for Grace Lab");
    expect(await part.textContent()).toMatch(/chunks? \d/);
    await expect.poll(() => part.getByTestId("running-progress").textContent(), { timeout: 15_000 }).toMatch(/\d+ % · chunk \d+: step \d+ of 10/);
    await expect.poll(() => part.getByTestId("running-since").textContent(), { timeout: 10_000 }).toMatch(/^[1-9][\d.]* s so far$/);
    // The clock is not in the live region, and neither is the countdown: only the state is announced.
    expect(await page.getByRole("status").first().textContent()).not.toContain("so far");
    await shot(page, "volunteer-running-desktop");

    await until("the task to finish", async () => (await creator.getTask(task.id)).status === "done", 60_000);
    await until("the page to count every chunk", async () => (await figure(page, "chunks-done")) >= 8);
    const helped = page.getByTestId("helped-task");
    await expect.poll(() => helped.count()).toBe(1);
    expect(await helped.textContent()).toMatch(/Stepped squares.*by Grace Lab.*8 chunks.*just now/s);
    // Credit in CPU hours, never milliseconds.
    await until("credit from the server", async () => (await page.getByTestId("credit").getAttribute("data-ms")) !== "");
    expect(await page.getByTestId("credit").textContent()).toMatch(/CPU h$/);
    expect(await page.getByTestId("leaderboard-credit").first().textContent()).toMatch(/CPU h$/);

    // Its name: anonymous, it renames its own volunteer; the leaderboard shows it.
    // A default name that says something: this headless Chromium is "Chrome on Linux".
    expect(await page.getByTestId("shown-as").textContent()).toBe("Chrome on Linux");
    await page.getByRole("button", { name: "Change name" }).click();
    await page.getByLabel("Your name").fill("Ada's laptop");
    await page.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.getByTestId("shown-as").textContent()).toBe("Ada's laptop");
    await page.getByRole("table", { name: "Leaderboard" }).getByText("Ada's laptop (you)").waitFor({ timeout: 20_000 });

    // A reload starts a new runner; the figures this browser earned stay, as do its tasks.
    const before = { done: await figure(page, "chunks-done"), cpu: await figure(page, "cpu-time", "data-ms") };
    await page.getByRole("button", { name: "Pause" }).click();
    await until("the pause", async () => (await page.getByTestId("state").getAttribute("data-state")) === "paused");
    await page.reload();
    expect(await figure(page, "chunks-done")).toBe(before.done);
    expect(await figure(page, "cpu-time", "data-ms")).toBe(before.cpu);
    expect(await page.getByTestId("helped-task").textContent()).toContain("Stepped squares");
    await expect.poll(() => page.getByTestId("shown-as").textContent()).toBe("Ada's laptop");
    await shot(page, "volunteer-after-reload-desktop");
    await page.setViewportSize(phone);
    await shot(page, "volunteer-after-reload-phone");

    // Signing in on this browser makes its volunteer the account's, with what it earned.
    await page.goto(`${server.url}/signin?mode=register`);
    await page.getByLabel("Email").fill("linked-later@example.com");
    await page.getByLabel("Password").fill("a long password");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${server.url}/tasks`);
    const account = await createClient({ baseUrl: server.url }).login("linked-later@example.com", "a long password");
    await page.goto(`${server.url}/`);
    const mine = async () => {
      const token = await page.evaluate(() => localStorage.getItem("crowdcompute.volunteer.token"));
      return (await fetch(`${server.url}/api/volunteers/me`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<{ userId: string | null; chunksDone: number }>;
    };
    await until("the volunteer to compute for the account", async () => (await mine()).userId === account.user.id);
    expect((await mine()).chunksDone).toBe(before.done);
    await context.close();
  });

  it("uses a signed-in account's display name for its volunteers, and renames the account from the page", async () => {
    const { context, page } = await open();
    await page.goto(`${server.url}/signin?mode=register`);
    await page.getByLabel("Email").fill("volunteering@example.com");
    await page.getByLabel("Password").fill("a long password");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${server.url}/tasks`);
    await page.goto(`${server.url}/`);
    const task = await creator.createTask({ name: "quick", code: "export default (x) => x + 1", inputs: [1, 2, 3, 4], start: true });
    await page.getByRole("button", { name: "Start" }).click();
    await until("the quick task", async () => (await creator.getTask(task.id)).status === "done", 60_000);
    await page.getByRole("button", { name: "Change name" }).click();
    // The volunteer computes for the account: the name is the account's.
    await page.getByLabel("Account display name").fill("Volunteering Vera");
    await page.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.getByTestId("shown-as").textContent()).toBe("Volunteering Vera");
    expect(await page.getByText("your account's display name").count()).toBe(1);
    await page.getByRole("table", { name: "Leaderboard" }).getByText("Volunteering Vera (you)").waitFor({ timeout: 20_000 });
    const board = await createClient({ baseUrl: server.url }).leaderboard(10);
    // (The account of the first test, which linked its volunteer after the fact, is a user row too.)
    expect(board.filter((entry) => entry.kind === "user").map((entry) => entry.name)).toContain("Volunteering Vera");
    expect(board.some((entry) => entry.name === "Chrome on Linux")).toBe(false);
    await page.getByRole("button", { name: "Pause" }).click();
    await context.close();
  });

  it("holds off outside the daily hours it was given, and remembers them", async () => {
    const { context, page } = await open();
    // Noon, local time, for Date; timers keep running.
    await page.clock.setFixedTime(new Date(2026, 5, 1, 12, 0));
    await page.goto(`${server.url}/`);
    await page.getByRole("checkbox", { name: "Only between" }).check();
    await page.getByLabel("From").fill("22:00");
    await page.getByLabel("To").fill("07:00");
    await page.getByRole("button", { name: "Start" }).click();
    await expect.poll(() => page.getByTestId("held").textContent()).toBe("Held: outside your hours (22:00–07:00).");
    expect(await page.getByTestId("state").getAttribute("data-state")).toBe("stopped");
    await shot(page, "volunteer-held-by-schedule-desktop");

    await page.reload();
    expect(await page.getByRole("checkbox", { name: "Only between" }).isChecked()).toBe(true);
    expect(await page.getByLabel("From").inputValue()).toBe("22:00");
    expect(await page.getByLabel("To").inputValue()).toBe("07:00");
    await context.close();
  });

  it("closes the phone menu on Esc and gives the focus back to its button", async () => {
    const { context, page } = await open(phone);
    await page.goto(`${server.url}/`);
    const menu = page.getByRole("button", { name: "Menu" });
    await menu.click();
    await page.locator("#mobile-nav").waitFor();
    await shot(page, "volunteer-menu-phone");
    await page.keyboard.press("Escape");
    await expect.poll(() => page.locator("#mobile-nav").count()).toBe(0);
    expect(await menu.getAttribute("aria-expanded")).toBe("false");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Menu");
    await context.close();
  });

  it("raised no page errors", () => {
    expect(problems).toEqual([]);
  });
});
