// The whole path in real Chromium: a creator's task computed by two browser volunteers
// through the sandbox, one of them closed mid-run.
import type { RunningServer } from "@crowdcompute/api/node-server";
import type { TestDb } from "@crowdcompute/db/testing";
import { createClient, type ResultLine } from "@crowdcompute/sdk";
import { chromiumArgs, findChromium } from "@crowdcompute/tooling/chromium";
import { sql } from "drizzle-orm";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, startTestServer, until } from "./helpers.ts";

// Enough for both volunteers: each leases about 4 s of work for its 2 threads at a time.
const chunkCount = 1200;

// Deterministic work that takes a few ms: the 1,500th iterate of a linear congruential walk.
const workCode = `
export default async function work(input, ctx) {
  let x = input.seed >>> 0;
  const started = performance.now();
  for (let i = 0; i < 1500; i++) x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  while (performance.now() - started < 25) {}
  return { index: ctx.index, value: x };
}`;

function expectedValue(seed: number): number {
  let x = seed >>> 0;
  for (let i = 0; i < 1500; i++) x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  return x;
}

async function rows<T>(db: TestDb["handle"]["db"], query: ReturnType<typeof sql>): Promise<T[]> {
  const out: unknown = await db.execute(query);
  return (Array.isArray(out) ? out : (out as { rows: T[] }).rows) as T[];
}

describe(`volunteers in Chromium (${backend})`, () => {
  let testDb: TestDb;
  let stopServer: () => Promise<void>;
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    ({ server, testDb, close: stopServer } = await startTestServer({ LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" }));
    browser = await chromium.launch({ executablePath: findChromium(), args: chromiumArgs });
  });

  afterAll(async () => {
    await browser?.close();
    await stopServer?.();
  });

  async function openVolunteer(): Promise<{ context: BrowserContext; page: Page; volunteerId: string }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    await page.goto(`${server.url}/`);
    await page.getByRole("slider", { name: "Threads" }).fill("2");
    await page.getByRole("button", { name: "Start" }).click();
    const token = await until("a volunteer token", () => page.evaluate(() => localStorage.getItem("crowdcompute.volunteer.token")));
    const volunteerId = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).sub as string;
    return { context, page, volunteerId };
  }

  it("computes every chunk exactly once and reissues the leases of a closed volunteer", async () => {
    const anonymous = createClient({ baseUrl: server.url });
    const { token } = await anonymous.register("creator@example.com", "a long password");
    const creator = anonymous.withToken(token);
    const seeds = Array.from({ length: chunkCount }, (_, i) => ({ seed: (i * 2654435761) >>> 0 }));
    const task = await creator.createTask({ name: "lcg", code: workCode, inputs: seeds, timeoutMs: 1000, start: true });

    const stays = await openVolunteer();
    const leaves = await openVolunteer();
    const db = testDb.handle.db;

    // Close the second volunteer once it has posted results and holds chunks it has not reported.
    const held = await until("the leaving volunteer to hold unreported chunks after some results", async () => {
      const [done] = await rows<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM results WHERE volunteer_id = ${leaves.volunteerId}`);
      if (!done || done.n === 0) return null;
      const live = await rows<{ id: string; first_idx: number; n: number; reported: string }>(
        db,
        sql`SELECT id, first_idx, n, reported FROM leases
            WHERE volunteer_id = ${leaves.volunteerId} AND NOT reclaimed AND position(B'0' in reported) > 0`,
      );
      return live.length > 0 ? live : null;
    });
    await leaves.context.close();
    const closedAt = Date.now();
    const heldLeaseIds = held.map((lease) => lease.id);

    const finished = await until("the task to finish", async () => {
      const view = await creator.getTask(task.id);
      return view.status === "done" ? view : null;
    });
    expect(finished.counts).toEqual({ total: chunkCount, pending: 0, leased: 0, done: chunkCount, failed: 0, awaitingCopy: 0 });

    // The closed volunteer's leases were taken back and their chunks computed by the other one.
    const reissued = await rows<{ id: string; reclaimed: boolean }>(
      db,
      sql`SELECT id, reclaimed FROM leases WHERE id IN (SELECT value::bigint FROM json_array_elements_text(${JSON.stringify(heldLeaseIds)}::json))`,
    );
    expect(reissued.length).toBe(heldLeaseIds.length);
    expect(reissued.every((lease) => lease.reclaimed)).toBe(true);
    const reassigned = await rows<{ n: number }>(
      db,
      sql`SELECT count(*)::int AS n FROM results r JOIN leases l ON l.id IN (SELECT value::bigint FROM json_array_elements_text(${JSON.stringify(heldLeaseIds)}::json))
          WHERE r.task_id = ${task.id} AND r.idx >= l.first_idx AND r.idx < l.first_idx + l.n AND r.volunteer_id = ${stays.volunteerId}`,
    );
    expect(reassigned[0]!.n).toBeGreaterThan(0);
    console.log(`closed volunteer held ${heldLeaseIds.length} lease(s); task done ${((Date.now() - closedAt) / 1000).toFixed(1)} s after the close`);

    // Every index exactly once, with the value computed here independently.
    const lines: ResultLine[] = [];
    for await (const line of creator.results(task.id)) lines.push(line);
    expect(lines.map((line) => line.index)).toEqual(seeds.map((_, i) => i));
    for (const line of lines) {
      expect(line.status).toBe("done");
      if (line.status === "done") expect(line.result).toEqual({ index: line.index, value: expectedValue(seeds[line.index]!.seed) });
    }
    expect(await stays.page.getByTestId("chunks-done").textContent()).not.toBe("0");
    await stays.context.close();
  });
});
