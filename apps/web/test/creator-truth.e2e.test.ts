// What a creator is told, in real Chromium against the real server: why a replicated task
// waits (each chunk's votes and what it waits for: more agreeing copies, then a trusted
// volunteer's copy once two fresh volunteers agree; a warning at publish when too
// few volunteers are online), a JSON-array file too big for one request going up in parts,
// the throughput chart after a reload (the server keeps the history), stat cards that do not
// wrap, and the API reference page: offline (nothing from another host), this product only,
// grouped by resource. Screenshots at desktop and phone widths go to apps/web/test-artifacts/.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RunningServer } from "@crowdcompute/api/node-server";
import { createClient, type Session } from "@crowdcompute/sdk";
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { browserTestBackend as backend, serverAndBrowser, signIn } from "./helpers.ts";

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const desktop = { width: 1280, height: 900 };
const phone = { width: 390, height: 844 };

describe(`what the creator pages say, in Chromium (${backend})`, () => {
  const running = serverAndBrowser({ LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" });
  let server: RunningServer;
  let browser: Browser;
  let session: Session;
  const problems: string[] = [];

  beforeAll(async () => {
    ({ server, browser } = running);
    mkdirSync(artifacts, { recursive: true });
    session = await createClient({ baseUrl: server.url }).register("ada@example.com", "a long password", "Ada Lab");
  });

  async function open({ signedIn = false, viewport = desktop } = {}) {
    const context = await browser.newContext({ viewport });
    if (signedIn) {
      await signIn(context, server, session);
    }
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    return { context, page };
  }

  const shot = async (page: Page, name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${artifacts}${name}.png`, fullPage: true });
  };

  /** Every stat card's figure and label on one line: none wraps. */
  const statsOnOneLine = (page: Page) =>
    page.evaluate(() =>
      [...document.querySelectorAll("strong[data-testid], div.rounded-xl > span.truncate")]
        .filter((element) => (element as HTMLElement).offsetParent !== null)
        .filter((element) => element.getClientRects().length !== 1 || element.getBoundingClientRect().height > 32)
        .map((element) => element.textContent),
    );

  it("explains a replicated task that waits for another volunteer, warned of at publish", async () => {
    // No volunteer online yet (a volunteer counts once it holds work): a task that needs two
    // distinct volunteers per chunk is published with a warning.
    const creator = await open({ signedIn: true });
    const page = creator.page;
    await page.goto(`${server.url}/tasks/new`);
    await page.getByLabel("Name").fill("Twice checked");
    await page.getByRole("textbox", { name: "Work code" }).fill("export default (x) => x * 3;\n");
    await page.getByLabel("Inputs (JSON array, one element per chunk)").fill("[1, 2, 3, 4, 5, 6]");
    await page.getByLabel("Replication").fill("2");
    await page.getByLabel("Quorum").fill("2");
    await expect
      .poll(() => page.getByTestId("volunteers-warning").textContent(), { timeout: 20_000 })
      .toBe("Replication 2 needs 2 different volunteers for each chunk (no volunteer or account computes two copies of one chunk); 0 volunteers are online now, so chunks will wait for more.");
    await shot(page, "new-task-replication-warning-desktop");
    await page.getByRole("button", { name: "Publish and start" }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    const taskId = page.url().split("/").at(-1)!;

    // One anonymous volunteer.
    const first = await open();
    await first.page.goto(`${server.url}/`);
    // The countdown to the next try shows only between an answer with no work and the next
    // lease, which may then wait on the server: a moment every 20 s. An observer notes it when
    // it first appears, as a waitFor on a busy machine can miss it (CI did once).
    await first.page.evaluate(() => {
      const seen = { shown: false, announced: false, statusText: "" };
      (window as unknown as { nextTrySeen: typeof seen }).nextTrySeen = seen;
      new MutationObserver(() => {
        const countdown = document.querySelector('[data-testid="next-try"]');
        if (!countdown || seen.shown) return;
        seen.shown = true;
        seen.announced = countdown.closest('[role="status"]') !== null;
        seen.statusText = document.querySelector('[role="status"]')?.textContent ?? "";
      }).observe(document.body, { childList: true, subtree: true });
    });
    await first.page.getByRole("slider", { name: "Threads" }).fill("1");
    await first.page.getByRole("button", { name: "Start" }).click();

    // The one volunteer computes one copy of each chunk; then the chunks wait for someone else.
    const waiting = page.getByTestId("waiting-awaiting");
    await expect
      .poll(() => waiting.textContent(), { timeout: 60_000 })
      .toBe(
        "6 chunks need more copies that agree: 2 of 2 copies must agree, one of them from a trusted volunteer, and each copy must come from a volunteer (and account) that has not computed that chunk yet (1 volunteer online now).",
      );
    const votes = page.getByRole("table", { name: "Votes per chunk" });
    await expect.poll(() => votes.getByTestId("voting-chunk").count(), { timeout: 15_000 }).toBe(6);
    // Each chunk plans its replication's copies (a third only once two untrusted ones agree).
    expect(await votes.getByTestId("voting-chunk").first().textContent()).toMatch(/^01 of 2Chrome on Linux1 more agreeing copy from another volunteer$/);
    await expect.poll(() => page.getByTestId("count-leased").textContent()).toBe("0");
    expect(await page.getByTestId("count-pending").textContent()).toBe("6");
    expect(await statsOnOneLine(page)).toEqual([]);
    await shot(page, "task-waiting-for-volunteer-desktop");
    await page.setViewportSize(phone);
    expect(await statsOnOneLine(page)).toEqual([]);
    await shot(page, "task-waiting-for-volunteer-phone");
    await page.setViewportSize(desktop);

    // The volunteer is told there is no work, and the countdown to its next try is not announced.
    type Seen = { nextTrySeen: { shown: boolean; announced: boolean; statusText: string } };
    await expect.poll(() => first.page.evaluate(() => (window as unknown as Seen).nextTrySeen.shown), { timeout: 45_000 }).toBe(true);
    const seen = await first.page.evaluate(() => (window as unknown as Seen).nextTrySeen);
    expect(seen.announced).toBe(false);
    expect(seen.statusText).not.toMatch(/asking again/);

    // A second fresh volunteer agrees with the first: a quorum of untrusted copies, which
    // cannot decide a chunk (docs/architecture.md, "Replication, trust and reduce"): each now
    // waits for a trusted volunteer's copy, and the page says so.
    const second = await open();
    await second.page.goto(`${server.url}/`);
    await second.page.getByRole("slider", { name: "Threads" }).fill("1");
    await second.page.getByRole("button", { name: "Start" }).click();
    const trusted = page.getByTestId("waiting-trusted");
    await expect
      .poll(() => trusted.textContent(), { timeout: 60_000 })
      .toMatch(
        /^6 chunks wait for a trusted volunteer's copy: copies from new volunteers agree, but only a copy from a trusted volunteer .*more copies from new volunteers cannot \(\d volunteers? online now\)\.$/,
      );
    await expect.poll(() => votes.getByTestId("waits-for").first().textContent(), { timeout: 15_000 }).toBe("a trusted volunteer's copy: 2 untrusted copies agree");
    expect(await page.getByTestId("waiting-awaiting").count()).toBe(0);
    await shot(page, "task-waiting-for-trusted-copy-desktop");

    // The owner's own volunteer counts as trusted on its task: it makes every quorum.
    const own = await open({ signedIn: true });
    await own.page.goto(`${server.url}/`);
    await own.page.getByRole("button", { name: "Start" }).click();
    await page.getByTestId("task-status").filter({ hasText: "done" }).waitFor({ timeout: 90_000 });
    expect(await page.getByTestId("task-status").textContent()).toBe("done");
    expect(await page.getByTestId("why-waiting").count()).toBe(0);

    // Reloaded, the chart still has the task's whole life: the server keeps the history.
    await page.reload();
    await page.getByRole("img", { name: "Chunks done per second over the task's life" }).waitFor({ timeout: 20_000 });
    await shot(page, "task-done-history-desktop");
    await page.setViewportSize(phone);
    await shot(page, "task-done-history-phone");
    const history = await createClient({ baseUrl: server.url, token: session.token }).taskThroughput(taskId);
    expect(history.points.reduce((sum, p) => sum + p.done, 0)).toBe(6);
    for (const context of [first.context, own.context, creator.context]) await context.close();
  });

  it("uploads a JSON-array file larger than one request in parts", async () => {
    const { context, page } = await open({ signedIn: true });
    const parts: string[] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (request.method() === "POST" && /\/api\/tasks\/[^/]+\/inputs$/.test(url.pathname)) parts.push(url.search);
    });
    await page.goto(`${server.url}/tasks/new`);
    await page.getByLabel("Name").fill("Big array");
    await page.getByRole("textbox", { name: "Work code" }).fill("export default (x) => x.length;\n");
    await page.getByRole("radio", { name: "File (JSON or NDJSON)" }).check();
    // 20,000 strings of 450 characters: ~9 MB of JSON, over the 8 MiB sent in one request.
    const values = Array.from({ length: 20_000 }, (_, i) => `${i}:`.padEnd(450, "x"));
    await page.getByLabel("Inputs file").setInputFiles({ name: "big.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(values)) });
    await expect.poll(() => page.getByTestId("inputs-summary").textContent()).toBe("20,000 chunks from big.json, uploaded in parts");
    await page.getByRole("button", { name: "Save as draft" }).click();
    await page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/, { timeout: 60_000 });
    await page.getByTestId("task-status").filter({ hasText: "draft" }).waitFor();
    expect(await page.getByTestId("progress-text").textContent()).toContain("0 of 20,000 chunks");
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts[0]).toBe("?offset=0");
    expect(parts.at(-1)).toMatch(/&seal=true$/);
    const taskId = page.url().split("/").at(-1)!;
    const chunks = await createClient({ baseUrl: server.url, token: session.token }).listChunks(taskId, { limit: 2, cursor: "12344" });
    expect(chunks.items.map((chunk) => chunk.input)).toEqual([values[12345], values[12346]]);
    await context.close();
  });

  it("serves an API reference that loads nothing from elsewhere, shows only this product and groups operations by resource", async () => {
    for (const [viewport, name] of [
      [desktop, "api-docs-desktop"],
      [phone, "api-docs-phone"],
    ] as const) {
      const { context, page } = await open({ viewport });
      const elsewhere: string[] = [];
      page.on("request", (request) => {
        if (!request.url().startsWith(server.url) && !request.url().startsWith("data:") && !request.url().startsWith("blob:")) elsewhere.push(request.url());
      });
      await page.goto(`${server.url}/api/docs`);
      await page.getByText("CrowdCompute API").first().waitFor({ timeout: 30_000 });
      if (viewport === desktop) {
        for (const group of ["Accounts", "API keys", "Tasks", "Live updates", "Volunteers", "Statistics", "Administration", "Server"]) {
          await page.getByText(group, { exact: true }).first().waitFor({ timeout: 10_000 });
        }
      }
      // A resource's description, in the page body at both widths.
      await page.getByText("Sign up, sign in, and the account's display name.").first().waitFor({ timeout: 10_000 });
      // Locators reach into the reference's shadow roots, where page text does not.
      for (const vendor of [/powered by scalar/i, /ask ai/i, /open api client/i, /developer tools/i, /scalar/i]) {
        expect(await page.getByText(vendor).filter({ visible: true }).count(), String(vendor)).toBe(0);
      }
      expect(await page.locator('a[href*="scalar.com"]').filter({ visible: true }).count()).toBe(0);
      expect(elsewhere).toEqual([]);
      // The first screen only: the whole reference is tens of thousands of pixels tall.
      await page.screenshot({ path: `${artifacts}${name}.png` });
      await context.close();
    }
  });

  it("raised no page errors", () => {
    expect(problems).toEqual([]);
  });
});
