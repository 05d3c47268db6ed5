// A volunteer page with nothing to do waits on the server for work (`waitMs`, docs/architecture.md
// "Dispatch", waiting volunteers): a task started while it waits reaches it at once, though the
// server tells clients that do not wait to ask again only after a minute.
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, newCreator, serverAndBrowser, until } from "./helpers.ts";

describe(`a waiting volunteer page (${backend})`, () => {
  // A page that polled would ask again only after IDLE_RETRY_MS: a minute.
  const running = serverAndBrowser({ IDLE_RETRY_MS: "60000" });

  it("runs a task started while it waits, without polling", async () => {
    const { server, browser } = running;
    const creator = await newCreator(server, "waiter@example.com");
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${server.url}/`);
    await page.getByRole("button", { name: "Start" }).click();
    await until("the page to wait for work", async () => (await page.getByTestId("state").textContent()) === "Waiting for work", 20_000);
    // Let its lease request reach the server and be held there.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const task = await creator.createTask({ name: "prompt", code: "export default (x) => x * 2", inputs: [21], start: true });
    // Well under the minute a polling page would wait.
    await until("the page to run the chunk", async () => (await page.getByTestId("chunks-done").textContent()) === "1", 20_000);
    await until("the result to be in", async () => (await creator.getTask(task.id)).status === "done", 20_000);
    expect((await creator.getTask(task.id)).counts.done).toBe(1);
  });
});
