// What work code says while it runs reaches its creator through real browser volunteers:
// ctx.progress on the task page's "chunks running now", console output on the task page and
// in the chunk listing (and in the volunteer's own console only when asked), and a chunk's
// checkpoint carried from a volunteer killed mid-chunk to the one that gets the chunk next.
import type { RunningServer } from "@crowdcompute/api/node-server";
import type { TestDb } from "@crowdcompute/db/testing";
import { type Client, createClient, type Session } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { type SQL, sql } from "drizzle-orm";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, signIn, startTestServer, until } from "./helpers.ts";

// Sums i² for i < n, one step every 20 ms, checkpointing its state as it goes: a resumed
// attempt starts from the state and ends with the same sum. It says where it started.
const stepsCode = `
export default async function work(input, ctx) {
  const from = ctx.resume ?? { i: 0, sum: 0 };
  console.log("started at step " + from.i);
  let { i, sum } = from;
  for (; i < input.n; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    sum += i * i;
    ctx.checkpoint({ i: i + 1, sum });
    ctx.progress((i + 1) / input.n, "step " + (i + 1) + " of " + input.n);
  }
  if (input.warn) console.warn("careful: " + input.warn);
  return { sum };
}`;
const sumOfSquares = (n: number) => (n * (n - 1) * (2 * n - 1)) / 6;

async function queryRows<T>(testDb: TestDb, query: SQL): Promise<T[]> {
  const out: unknown = await testDb.handle.db.execute(query);
  return (Array.isArray(out) ? out : (out as { rows: T[] }).rows) as T[];
}

describe(`chunk progress, console and checkpoints with real volunteers (${backend})`, () => {
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let testDb: TestDb;
  let browser: Browser;
  let creator: Client;
  let session: Session;

  beforeAll(async () => {
    // A short grace: a vanished volunteer's chunk comes back one timeout and half a second after its last heartbeat.
    ({ server, testDb, close: stopServer } = await startTestServer({ LEASE_GRACE_MS: "500", IDLE_RETRY_MS: "300" }));
    browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
    const anonymous = createClient({ baseUrl: server.url });
    session = await anonymous.register("watcher@example.com", "a long password");
    creator = anonymous.withToken(session.token);
  });
  afterAll(async () => {
    await browser?.close();
    await stopServer?.();
  });

  /** A volunteer page in a context of its own (its own identity), started with `threads`. */
  async function volunteer(threads: number, options: { showConsole?: boolean } = {}): Promise<{ context: BrowserContext; page: Page; logged: string[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const logged: string[] = [];
    page.on("console", (message) => logged.push(message.text()));
    await page.goto(`${server.url}/`);
    await page.getByRole("slider", { name: "Threads" }).fill(String(threads));
    if (options.showConsole) await page.getByTestId("show-console").check();
    await page.getByRole("button", { name: "Start" }).click();
    return { context, page, logged };
  }

  it("resumes a chunk from the checkpoint of a volunteer that was killed mid-chunk, with the same result", async () => {
    // 150 steps of ~20 ms: ~3 s, within the 4 s timeout; heartbeats every 2 s carry the checkpoint.
    const n = 150;
    const task = await creator.createTask({ name: "resumable", code: stepsCode, inputs: [{ n }], timeoutMs: 4000, start: true });
    const first = await volunteer(1);
    const saved = await until("a checkpoint of the first volunteer to reach the server", async () => {
      const rows = await queryRows<{ checkpoint: string | null }>(testDb, sql`SELECT checkpoint FROM chunk_live WHERE task_id = ${task.id}`);
      return rows[0]?.checkpoint ? (JSON.parse(rows[0].checkpoint) as { i: number; sum: number }) : null;
    });
    // Killed mid-chunk: its context closed, nothing reported, nothing given back.
    await first.context.close();
    expect(saved.i).toBeGreaterThan(0);
    expect(saved.i).toBeLessThan(n);
    const listed = (await creator.listChunks(task.id)).items[0]!;
    expect(["leased", "pending"]).toContain(listed.status);
    expect(listed.checkpointAt).not.toBeNull();

    // The second volunteer gets the chunk once the first one's lease expires.
    const second = await volunteer(1);
    await until("the task to be done", async () => (await creator.getTask(task.id)).status === "done", 60_000);
    const lines: unknown[] = [];
    for await (const line of creator.results(task.id)) lines.push(line);
    expect(lines).toEqual([{ index: 0, input: { n }, status: "done", result: { sum: sumOfSquares(n) } }]);
    // It started where the first one's checkpoints left off (the one seen, or a later one that
    // was on its way when the first volunteer died), not from scratch.
    const chunk = (await creator.listChunks(task.id)).items[0]!;
    expect(chunk.console).toMatchObject({ outcome: "done", truncated: false });
    expect(chunk.console!.lines).toHaveLength(1);
    const startedAt = Number(/^started at step (\d+)$/.exec(chunk.console!.lines[0]!.text)?.[1]);
    expect(startedAt).toBeGreaterThanOrEqual(saved.i);
    expect(startedAt).toBeLessThan(n);
    expect(chunk.checkpointAt).toBeNull();
    await second.context.close();
  });

  it("a 10 s chunk that reports each second shows its progress in the chunk listing while it runs, not only at the next regular beat", async () => {
    // Before, progress rode the heartbeat, every min(10 s, timeout / 2): this chunk showed none.
    const code = `export default async function work(input, ctx) {
      for (let i = 1; i <= 10; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        ctx.progress(i / 10, "second " + i);
      }
      return input;
    }`;
    const task = await creator.createTask({ name: "ten seconds", code, inputs: [7], timeoutMs: 60_000, start: true });
    const v = await volunteer(1);
    // What the listing says of the chunk while it is leased: its fractions, in the order seen.
    const seen: number[] = [];
    await until(
      "the chunk to be done",
      async () => {
        const [chunk] = (await creator.listChunks(task.id)).items;
        if (chunk?.status === "leased" && chunk.progress && seen.at(-1) !== chunk.progress.fraction) seen.push(chunk.progress.fraction);
        return chunk?.status === "done";
      },
      60_000,
    );
    console.log(`progress seen in the listing while the chunk ran: ${seen.join(", ")}`);
    // Several steps of it, rising, before the chunk was done.
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(seen[0]).toBeLessThan(0.8);
    await v.context.close();
  });

  it("shows the chunks running now with their progress and the console output on the task page; the volunteer's console stays quiet unless asked", async () => {
    // ~7 s a chunk, reporting progress every 20 ms: the page sends it at most once a second.
    const inputs = [{ n: 350 }, { n: 350, warn: "odd input" }];
    const task = await creator.createTask({ name: "watched", code: stepsCode, inputs, timeoutMs: 10_000, start: true });
    // The creator's task page.
    const context = await browser.newContext();
    await signIn(context, server, session);
    const watcher = await context.newPage();
    await watcher.goto(`${server.url}/tasks/${task.id}`);
    await watcher.getByRole("heading", { name: "Chunks running now" }).waitFor();

    const quiet = await volunteer(2);
    // Beats (at most one a second) carry the chunks' progress to the page's "chunks running now".
    const running = watcher.getByRole("list", { name: "Chunks running now" });
    await running
      .getByText(/\d+ % · step \d+ of 350/)
      .first()
      .waitFor({ timeout: 30_000 });
    expect(await running.textContent()).toMatch(/Chunk [01]/);

    await until("the task to be done", async () => (await creator.getTask(task.id)).status === "done", 60_000);
    const outputs = watcher.getByRole("list", { name: "Newest console output" });
    await outputs.getByText("careful: odd input").waitFor();
    expect(await watcher.getByLabel("Console of chunk 0").textContent()).toBe("started at step 0");
    expect(await watcher.getByLabel("Console of chunk 1").textContent()).toBe("started at step 0warn: careful: odd input");
    // The chunk look-up shows a chunk's console from the listing.
    await watcher.getByLabel("Chunk", { exact: true }).fill("1");
    await watcher.getByRole("button", { name: "Show" }).click();
    await watcher.getByTestId("looked-up-chunk").getByText("careful: odd input").waitFor();
    // The volunteer's own console saw none of it.
    expect(quiet.logged.filter((text) => text.includes("started at step"))).toEqual([]);

    // A volunteer who asks sees each line, prefixed with its chunk and task.
    const again = await creator.createTask({ name: "echoed", code: stepsCode, inputs: [{ n: 5, warn: "echo" }], timeoutMs: 10_000, start: true });
    await quiet.context.close();
    const shown = await volunteer(1, { showConsole: true });
    await until("the echoed task to be done", async () => (await creator.getTask(again.id)).status === "done", 60_000);
    await until("the lines in the volunteer's console", async () => shown.logged.some((text) => text === `[chunk 0 of task ${again.id}] careful: echo`));
    expect(shown.logged).toContain(`[chunk 0 of task ${again.id}] started at step 0`);
    await shown.context.close();
  });
});
