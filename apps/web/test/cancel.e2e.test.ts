// A creator's cancel reaches chunks already running in a volunteer's page: the page's
// heartbeat learns the task stopped and aborts them (ctx.signal) instead of finishing them.
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, newCreator, serverAndBrowser, until } from "./helpers.ts";

// Runs until aborted; a timeout (10 s) would report an error, a cancel reports nothing.
const patientCode = `
export default async function work(input, ctx) {
  while (!ctx.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 50));
  throw new Error("stopped by " + (ctx.signal.reason?.name ?? "abort"));
}`;

describe(`cancelling a task under way (${backend})`, () => {
  const running = serverAndBrowser({ IDLE_RETRY_MS: "300" });

  it("stops the page's running chunks without reporting them as failures", async () => {
    const { server, browser } = running;
    const creator = await newCreator(server, "canceller@example.com");
    const task = await creator.createTask({ name: "patient", code: patientCode, inputs: [1, 2], timeoutMs: 10_000, start: true });

    const page = await (await browser.newContext()).newPage();
    await page.goto(`${server.url}/`);
    await page.getByRole("slider", { name: "Threads" }).fill("2");
    await page.getByRole("button", { name: "Start" }).click();
    await until("both chunks to be leased", async () => (await creator.getTask(task.id)).counts.leased === 2);

    await creator.taskAction(task.id, "cancel");
    await until("the page to give up the cancelled chunks", async () => (await page.getByTestId("state").textContent()) === "Waiting for work", 9_000);
    expect(await page.getByTestId("chunks-failed").textContent()).toBe("0");
    expect(await page.getByTestId("chunks-done").textContent()).toBe("0");
    const view = await creator.getTask(task.id);
    expect(view.status).toBe("cancelled");
    expect(view.lastError).toBeNull();
  });
});
