// A reload is not a pause, in real Chromium: a volunteer that pressed Start and reloads the
// page (or restarts the browser) is started again without pressing anything, and the chunk the
// old page held is given back at once, not left until its lease's deadline minutes later.
// Pause is remembered too: a paused volunteer stays paused across a reload.
import type { Request } from "playwright-core";
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, newCreator, serverAndBrowser, spinningWork, until } from "./helpers.ts";

// One chunk that spins its thread for 20 s: a reload always finds it mid-chunk.
const spinCode = spinningWork(20_000, "input * 2");

describe(`reloading a started volunteer in Chromium (${backend})`, () => {
  // A page that stops beating loses its blocks after LEASE_SILENT_MS (15 s by default): raised
  // to 10 minutes, so only a release frees a chunk within this test's bounds.
  const running = serverAndBrowser({ IDLE_RETRY_MS: "300", LEASE_SILENT_MS: "600000" });

  it("gives the old page's chunk back at once and starts again by itself", async () => {
    const { server, browser } = running;
    const creator = await newCreator(server, "reloader@example.com");
    // A 5-minute timeout: the lease's deadline is minutes away, so only a release frees the chunk.
    const task = await creator.createTask({ name: "spin", code: spinCode, inputs: [21], timeoutMs: 300_000, start: true });
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    await page.goto(`${server.url}/`);
    await page.getByRole("slider", { name: "Threads" }).fill("1");
    await page.getByRole("button", { name: "Start" }).click();
    await page.getByTestId("running-part").waitFor({ timeout: 30_000 });
    expect((await creator.getTask(task.id)).counts).toMatchObject({ leased: 1, pending: 0 });

    // No request interception here: Chromium drops a keepalive request that DevTools pauses
    // while its page unloads (puppeteer#14515), and the release is exactly such a request. The
    // proof is the deadline instead: the old page's lease runs for 5 minutes, so the reloaded
    // page can compute the chunk within 90 s only if the old page gave it back.
    const reloadedAt = Date.now();
    await page.reload();

    // Started again without a click: the page says so and offers Pause, not Start.
    await page.getByRole("button", { name: "Pause" }).waitFor();
    expect(await page.getByRole("button", { name: "Start" }).count()).toBe(0);
    await until("the chunk to be computed by the reloaded page", async () => (await creator.getTask(task.id)).status === "done", 90_000);
    expect(Date.now() - reloadedAt).toBeLessThan(120_000);
    const lines = [];
    for await (const line of creator.results(task.id)) lines.push(line);
    expect(lines.map((line) => (line.status === "done" ? line.result : line.error))).toEqual([42]);

    // Pause is remembered as well: after a reload the page offers Resume... and runs nothing.
    await page.getByRole("button", { name: "Pause" }).click();
    await until("the pause", async () => (await page.getByTestId("state").getAttribute("data-state")) === "paused");
    await page.reload();
    await page.getByRole("button", { name: "Start" }).waitFor();
    expect(await page.getByTestId("state").getAttribute("data-state")).toBe("stopped");
    await context.close();
  });

  it("gives back a block whose results were computed but not yet posted when the page went", async () => {
    const { server, browser } = running;
    const creator = await newCreator(server, "unposted@example.com");
    const task = await creator.createTask({ name: "quick", code: "export default (x) => x * 2;", inputs: [5], timeoutMs: 300_000, start: true });
    const context = await browser.newContext();
    const page = await context.newPage();
    // The old page's post fails (as on a network fault) and waits in its outbox to be tried
    // again when the page reloads. The route is gone before the reload: Chromium drops a
    // keepalive request that DevTools pauses while its page unloads (puppeteer#14515).
    let failPost: () => Promise<void> = async () => {};
    let posted: () => void = () => {};
    const postSeen = new Promise<void>((resolve) => (posted = resolve));
    await page.route("**/api/work/results", (route) => {
      failPost = () => route.abort("failed");
      posted();
    });
    await page.goto(`${server.url}/`);
    await page.getByRole("button", { name: "Start" }).click();
    await postSeen;
    expect((await creator.getTask(task.id)).counts).toMatchObject({ leased: 1, done: 0 });
    await failPost();
    await page.unrouteAll();
    // The runner waits 500 ms before it posts again: the reload comes first.
    const reloadedAt = Date.now();
    await page.reload();

    // The lease runs for 5 minutes: the reloaded page computes the chunk within 60 s only if
    // the old page gave its block back.
    await until("the chunk to be computed again", async () => (await creator.getTask(task.id)).status === "done", 60_000);
    expect(Date.now() - reloadedAt).toBeLessThan(90_000);
    await context.close();
  });

  it("a browser restart (a new page with the same storage) starts again, as the same volunteer", async () => {
    const { server, browser } = running;
    // Minting is limited per network source (docs/architecture.md, "Minting volunteers"): a
    // browser mints once, when it holds no volunteer token, never on a restart.
    const mints: string[] = [];
    const countMints = (request: Request) => {
      if (request.method() === "POST" && new URL(request.url()).pathname === "/api/volunteers") mints.push(request.url());
    };
    const context = await browser.newContext();
    const first = await context.newPage();
    first.on("request", countMints);
    await first.goto(`${server.url}/`);
    await first.getByRole("button", { name: "Start" }).click();
    await until("the page to wait for work", async () => (await first.getByTestId("state").getAttribute("data-state")) === "waiting");
    const storage = await context.storageState();
    await context.close();

    // Like a browser that starts again with the profile it had: the same localStorage.
    const restarted = await browser.newContext({ storageState: storage });
    const page = await restarted.newPage();
    page.on("request", countMints);
    await page.goto(`${server.url}/`);
    await until("the page to start by itself", async () => (await page.getByTestId("state").getAttribute("data-state")) === "waiting");
    await page.getByRole("button", { name: "Pause" }).waitFor();
    expect(mints).toHaveLength(1);
    await restarted.close();
  });
});
