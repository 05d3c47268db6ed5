// A task with a reduce export, computed end to end by the volunteer page: its chunks, then
// its reduce chunks (whose input is an array of results), then the aggregate on the task.
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, newCreator, serverAndBrowser, until } from "./helpers.ts";

const code = `
export default (n) => ({ count: 1, sum: n, max: n });
export function reduce(parts) {
  return parts.reduce((a, b) => ({ count: a.count + b.count, sum: a.sum + b.sum, max: Math.max(a.max, b.max) }));
}`;

describe(`a map-reduce task in the volunteer page (${backend})`, () => {
  const running = serverAndBrowser({ IDLE_RETRY_MS: "300" });

  it("ends with the aggregate of all results", async () => {
    const { server, browser } = running;
    const creator = await newCreator(server, "mapreduce@example.com", "Stats Lab");
    // 300 chunks: two reduce chunks of the first level, one at the top.
    const inputs = Array.from({ length: 300 }, (_, i) => (i * 37) % 1000);
    const task = await creator.createTask({ name: "stats", code, inputs, start: true });

    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    await page.goto(`${server.url}/`);
    await page.getByRole("button", { name: "Start" }).click();
    const done = await until("the aggregate", async () => {
      const view = await creator.getTask(task.id);
      return view.status === "done" ? view : null;
    });
    expect(done.aggregate).toEqual({
      state: "done",
      value: { count: 300, sum: inputs.reduce((a, b) => a + b, 0), max: Math.max(...inputs) },
    });
    expect(done.counts).toMatchObject({ total: 300, done: 300, failed: 0 });
    // The page computed 300 chunks and 3 reduce chunks.
    expect(await page.getByTestId("chunks-done").textContent()).toBe("303");
    // The page says what it computed for, by name.
    await until("the task's name and creator on the page", async () => (await page.getByTestId("helped-task").first().textContent())?.includes("stats by Stats Lab"), 10_000);
  });
});
