// The volunteer's own choices in real Chromium: tasks and creators it skips get no new
// chunks from it (and come back on undo), and a CPU share of 50 % makes it rest as long as
// it computes.
import type { RunningServer } from "@crowdcompute/api/node-server";
import type { TestDb } from "@crowdcompute/db/testing";
import { type Client, createClient } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { sql } from "drizzle-orm";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, startTestServer, until } from "./helpers.ts";

/** A chunk that keeps its thread busy for `input.ms` of wall time, whatever else the machine runs. */
const busyCode = `
export default function work(input, ctx) {
  const started = performance.now();
  while (performance.now() - started < input.ms) {}
  return { index: ctx.index };
}`;

const graceMs = 1500;

interface LeaseExchange {
  exclude: { tasks?: string[]; creators?: string[] } | undefined;
  cpuPercent: number | undefined;
  taskIds: string[];
}

async function rows<T>(db: TestDb["handle"]["db"], query: ReturnType<typeof sql>): Promise<T[]> {
  const out: unknown = await db.execute(query);
  return (Array.isArray(out) ? out : (out as { rows: T[] }).rows) as T[];
}

describe(`a volunteer's exclusions and CPU share in Chromium (${backend})`, () => {
  let testDb: TestDb;
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    ({ server, testDb, close: stopServer } = await startTestServer({ LEASE_GRACE_MS: String(graceMs), IDLE_RETRY_MS: "300" }));
    browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
  });
  afterAll(async () => {
    await browser?.close();
    await stopServer?.();
  });

  async function creatorNamed(email: string, name: string): Promise<{ client: Client; id: string }> {
    const anonymous = createClient({ baseUrl: server.url });
    const session = await anonymous.register(email, "a long password", name);
    return { client: anonymous.withToken(session.token), id: session.user.id };
  }

  /** A volunteer page on one thread, with every lease it asks for (and gets) recorded. */
  async function openVolunteer(): Promise<{ context: BrowserContext; page: Page; exchanges: LeaseExchange[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    const exchanges: LeaseExchange[] = [];
    page.on("response", async (response) => {
      const path = new URL(response.url()).pathname;
      if (response.request().method() !== "POST" || (path !== "/api/work/lease" && path !== "/api/work/results") || !response.ok()) return;
      const body = response.request().postDataJSON() as { next?: unknown } & Record<string, unknown>;
      const request = (path === "/api/work/lease" ? body : body.next) as { exclude?: LeaseExchange["exclude"]; capabilities?: { cpuPercent?: number } } | undefined;
      if (!request) return;
      const { leases = [] } = (await response.json().catch(() => ({}))) as { leases?: { taskId: string }[] };
      exchanges.push({ exclude: request.exclude, cpuPercent: request.capabilities?.cpuPercent, taskIds: leases.map((lease) => lease.taskId) });
    });
    await page.goto(`${server.url}/`);
    await page.getByRole("slider", { name: "Threads" }).fill("1");
    return { context, page, exchanges };
  }

  it("gets no new chunks of a skipped task, nor of any task of a skipped creator, and works for them again on undo", async () => {
    const alpha = await creatorNamed("alpha@example.com", "Alpha Lab");
    const beta = await creatorNamed("beta@example.com", "Beta Lab");
    const inputs = Array.from({ length: 3000 }, () => ({ ms: 20 }));
    const alphaOne = await alpha.client.createTask({ name: "alpha one", code: busyCode, inputs, timeoutMs: 5000, start: true });
    const alphaTwo = await alpha.client.createTask({ name: "alpha two", code: busyCode, inputs, timeoutMs: 5000, start: true });
    const betaTask = await beta.client.createTask({ name: "beta sums", code: busyCode, inputs, timeoutMs: 5000, start: true });
    const counts = async (creator: Client, taskId: string) => (await creator.getTask(taskId)).counts;

    const { context, page, exchanges } = await openVolunteer();
    await page.getByRole("button", { name: "Start" }).click();
    const row = (name: string) => page.getByTestId("helped-task").filter({ hasText: name });
    await until(
      "alpha one and beta sums to be listed with their creators",
      async () => (await row("alpha one").getByTestId("exclude-creator").count()) === 1 && (await row("beta sums").getByTestId("exclude-creator").count()) === 1,
    );

    /**
     * Waits until the page has had `batches` more leases answered to requests that carry
     * `excluded`, and its chunks of `frozen` are all reported; then checks that from then on
     * `frozen` gets no chunk while beta sums goes on.
     */
    const expectFrozen = async (excluded: (exchange: LeaseExchange) => boolean, frozen: { creator: Client; id: string }[]) => {
      const excluding = () => exchanges.filter(excluded);
      await until("a lease request with the exclusion", async () => excluding().length >= 1);
      await until("the chunks in hand of the skipped tasks to be reported", async () => {
        for (const task of frozen) if ((await counts(task.creator, task.id)).leased > 0) return false;
        return true;
      });
      const before = await Promise.all(frozen.map((task) => counts(task.creator, task.id)));
      const betaBefore = (await counts(beta.client, betaTask.id)).done;
      const seen = excluding().length;
      await until("three more batches of beta sums", async () => excluding().length >= seen + 3 && (await counts(beta.client, betaTask.id)).done >= betaBefore + 12);
      const after = await Promise.all(frozen.map((task) => counts(task.creator, task.id)));
      expect(after).toEqual(before);
      // The server never answered an excluding request with a skipped task.
      const frozenIds = new Set(frozen.map((task) => task.id));
      expect(excluding().flatMap((exchange) => exchange.taskIds.filter((id) => frozenIds.has(id)))).toEqual([]);
    };

    // Skip one task: only beta sums (and alpha two) get new chunks.
    await page.getByRole("button", { name: "Skip task alpha one" }).click();
    await expect.poll(() => row("alpha one").getAttribute("data-excluded")).toBe("true");
    const skippedTask = page.getByTestId("exclusion").filter({ hasText: "alpha one" });
    expect(await skippedTask.getAttribute("data-kind")).toBe("task");
    expect(await skippedTask.getAttribute("data-id")).toBe(alphaOne.id);
    await expectFrozen((exchange) => exchange.exclude?.tasks?.includes(alphaOne.id) ?? false, [{ creator: alpha.client, id: alphaOne.id }]);

    // Undo: alpha one gets chunks again.
    const doneWhileSkipped = (await counts(alpha.client, alphaOne.id)).done;
    await page.getByRole("button", { name: "Work for alpha one again" }).click();
    expect(await page.getByTestId("exclusion").count()).toBe(0);
    await until("alpha one to get chunks again", async () => (await counts(alpha.client, alphaOne.id)).done > doneWhileSkipped);

    // Skip the creator: neither of Alpha Lab's tasks gets new chunks.
    await row("alpha one").getByRole("button", { name: "Skip all tasks by Alpha Lab" }).click();
    const skippedCreator = page.getByTestId("exclusion").filter({ hasText: "all tasks by Alpha Lab" });
    expect(await skippedCreator.getAttribute("data-kind")).toBe("creator");
    expect(await skippedCreator.getAttribute("data-id")).toBe(alpha.id);
    const creatorExcluded = (exchange: LeaseExchange) => exchange.exclude?.creators?.includes(alpha.id) ?? false;
    await expectFrozen(creatorExcluded, [
      { creator: alpha.client, id: alphaOne.id },
      { creator: alpha.client, id: alphaTwo.id },
    ]);
    expect(exchanges.filter(creatorExcluded).every((exchange) => exchange.exclude?.tasks?.length === 0)).toBe(true);

    // Remembered across visits, and still sent.
    await page.reload();
    expect(await page.getByTestId("exclusion").count()).toBe(1);
    expect(await page.getByTestId("exclusion").getAttribute("data-id")).toBe(alpha.id);
    await context.close();
    for (const [creator, id] of [
      [alpha.client, alphaOne.id],
      [alpha.client, alphaTwo.id],
      [beta.client, betaTask.id],
    ] as const)
      await creator.taskAction(id, "cancel");
  });

  it("rests as long as it computes at a CPU share of 50 %, and the server allows for it in the deadline", async () => {
    const { client: creator } = await creatorNamed("gamma@example.com", "Gamma Lab");
    const { context, page, exchanges } = await openVolunteer();
    expect(await page.getByTestId("cpu-share").textContent()).toBe("100 %");
    // The slider says what a browser cannot do: chunks that never yield run at full speed, then rest.
    await expect.poll(() => page.getByTestId("cpu-share-note").textContent()).toContain("never yield run at full speed and rest afterwards");
    await page.getByRole("button", { name: "Start" }).click();
    await until("the page to wait for work", async () => (await page.getByTestId("state").getAttribute("data-state")) === "waiting");

    const chunks = 32;
    const chunkMs = 100;
    const timeoutMs = 2000;
    /** Runs `chunks` chunks of `chunkMs` and says how long passed from the first batch's results to the last's. */
    const computeSpan = async (name: string) => {
      const task = await creator.createTask({ name, code: busyCode, inputs: Array.from({ length: chunks }, () => ({ ms: chunkMs })), timeoutMs, start: true });
      await until(`${name} to finish`, async () => (await creator.getTask(task.id)).status === "done");
      const [span] = await rows<{ ms: number; lease_ms: number }>(
        testDb.handle.db,
        sql`SELECT (SELECT extract(epoch FROM max(created_at) - min(created_at)) * 1000 FROM results WHERE task_id = ${task.id})::float8 AS ms,
                   (SELECT extract(epoch FROM deadline - created_at) * 1000 FROM leases WHERE task_id = ${task.id} ORDER BY id LIMIT 1)::float8 AS lease_ms`,
      );
      return span!;
    };

    const full = await computeSpan("full share");
    await page.getByRole("slider", { name: "CPU share" }).fill("50");
    expect(await page.getByTestId("cpu-share").textContent()).toBe("50 %");
    const half = await computeSpan("half share");

    const rests = half.ms - full.ms;
    console.log(`${chunks} chunks of ${chunkMs} ms on one thread: first to last batch ${Math.round(full.ms)} ms at 100 %, ${Math.round(half.ms)} ms at 50 % (+${Math.round(rests)} ms)`);
    // At 50 % each chunk is followed by a rest as long as it ran: about chunks × chunkMs more,
    // less what the rests hide of the round trips. A difference, not a ratio: a loaded machine
    // adds its overhead to both runs alike.
    expect(rests).toBeGreaterThanOrEqual(0.6 * chunks * chunkMs);
    expect(rests).toBeLessThanOrEqual(1.6 * chunks * chunkMs);
    // A new task's first block on 1 thread holds 2 chunks: due in 2 · 2000 ms + grace at 100 %,
    // twice that at 50 % (later blocks' deadlines come from the learned mean).
    expect(full.lease_ms).toBeCloseTo(2 * timeoutMs + graceMs, -2);
    expect(half.lease_ms).toBeCloseTo(2 * 2 * timeoutMs + graceMs, -2);
    expect(exchanges.at(-1)?.cpuPercent).toBe(50);

    // The share is remembered across visits.
    await page.reload();
    expect(await page.getByTestId("cpu-share").textContent()).toBe("50 %");
    await context.close();
  });
});
