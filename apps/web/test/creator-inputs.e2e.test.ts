// The other ways in and the lifecycle, driven through the pages: a range of integers saved as
// a draft then started, paused, resumed and cancelled; an NDJSON file whose failing chunk is
// shown and retried; and the volunteer page's remembered options (pause when hidden, only on
// power, offline) in Chromium.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { RunningServer } from "@crowdcompute/api/node-server";
import { createClient, type Session } from "@crowdcompute/sdk";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { compileWat, fib, fibWat, sha256Hex } from "../../../packages/sandbox/test/wat.ts";
import { browserTestBackend as backend, serverAndBrowser, signIn, until } from "./helpers.ts";

const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
// A failed request is logged by the browser: the 4xx the tests provoke, and the requests cut off offline.
const expectedConsole = /^Failed to load resource: (the server responded with a status of (401|422)|net::ERR_INTERNET_DISCONNECTED)/;

const rangeSumCode = `export default function work(input) {
  let sum = 0;
  for (let n = input.start; n < input.end; n += input.step) sum += n;
  return sum;
}
`;
const halvingCode = `export default function work(input) {
  if (input % 2 === 1) throw new Error("odd input " + input);
  return input / 2;
}
`;

describe(`task inputs, lifecycle and volunteer options in Chromium (${backend})`, () => {
  const running = serverAndBrowser({ LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" });
  let server: RunningServer;
  let browser: Browser;
  let session: Session;
  const problems: string[] = [];

  beforeAll(async () => {
    ({ server, browser } = running);
    mkdirSync(artifacts, { recursive: true });
    session = await createClient({ baseUrl: server.url }).register("grace@example.com", "a long password");
  });

  async function open(options: { signedIn?: boolean; init?: () => void } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    if (options.signedIn) {
      await signIn(context, server, session);
    }
    if (options.init) await context.addInitScript(options.init);
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && !expectedConsole.test(message.text())) problems.push(`console error: ${message.text()}`);
    });
    return { context, page };
  }

  const shot = async (page: Page, name: string) => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${artifacts}${name}.png`, fullPage: true });
  };

  const status = (page: Page, value: string) => page.getByTestId("task-status").filter({ hasText: value }).waitFor({ timeout: 60_000 });

  it("takes a range, saves a draft, and starts, pauses, resumes and cancels it", async () => {
    const { context, page } = await open({ signedIn: true });
    await page.goto(`${server.url}/tasks/new`);
    await page.getByLabel("Name").fill("Range sums");
    await page.getByRole("textbox", { name: "Work code" }).fill(rangeSumCode);
    await page.getByRole("radio", { name: "Range of integers" }).check();
    await page.getByLabel("Start", { exact: true }).fill("0");
    await page.getByLabel("End (exclusive)").fill("-5");
    await page.getByRole("button", { name: "Test run" }).click();
    // Said next to the field, and in the test run's own card.
    await page.locator("p[id$='-error']", { hasText: "End must be greater than start" }).waitFor();
    await page.getByRole("alert").filter({ hasText: "End must be greater than start" }).waitFor();
    await page.getByLabel("End (exclusive)").fill("1000");
    await page.getByLabel("Numbers per chunk").fill("100");
    expect(await page.getByTestId("inputs-summary").textContent()).toBe("10 chunks");
    await page.getByLabel("Chunks to test").fill("2");
    await page.getByRole("button", { name: "Test run" }).click();
    await until("the test run", async () => (await page.getByTestId("test-result").count()) === 2, 30_000);
    expect(await page.getByTestId("test-result").allTextContents()).toEqual(["4950", "14950"]);
    // Editing after a run says the report is stale.
    await page.getByLabel("Numbers per chunk").fill("50");
    await page.getByText("changed since this run").waitFor();
    await page.getByLabel("Numbers per chunk").fill("100");

    await page.getByRole("button", { name: "Save as draft" }).click();
    await status(page, "draft");
    expect(await page.getByTestId("progress-text").textContent()).toContain("0 of 10 chunks");
    await page.getByRole("button", { name: "Start" }).click();
    await status(page, "running");
    await page.getByRole("button", { name: "Pause" }).click();
    await status(page, "paused");
    await page.getByRole("button", { name: "Resume" }).click();
    await status(page, "running");
    // Cancelling asks first; "Keep it" keeps it running.
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Keep it" }).click();
    await status(page, "running");
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("button", { name: "Cancel task" }).click();
    await status(page, "cancelled");
    await context.close();
    expect(problems).toEqual([]);
  });

  it("takes an NDJSON file, shows the failed chunk and its error, and retries it", async () => {
    const { context, page } = await open({ signedIn: true });
    await page.goto(`${server.url}/tasks/new`);
    await page.getByLabel("Name").fill("Halves");
    await page.getByRole("textbox", { name: "Work code" }).fill(halvingCode);
    await page.getByRole("radio", { name: "File (JSON or NDJSON)" }).check();
    const file = page.getByLabel("Inputs file");
    await file.setInputFiles({ name: "bad.ndjson", mimeType: "application/x-ndjson", buffer: Buffer.from("2\n{oops\n4\n") });
    await page.getByText("bad.ndjson, line 2: not valid JSON").waitFor();
    const values = Array.from({ length: 25 }, (_, i) => (i === 7 ? 15 : i * 2));
    await file.setInputFiles({ name: "inputs.ndjson", mimeType: "application/x-ndjson", buffer: Buffer.from(`${values.join("\n")}\n`) });
    expect(await page.getByTestId("inputs-summary").textContent()).toBe("25 chunks from inputs.ndjson");
    await page.getByLabel("Attempts").fill("1");
    await page.getByRole("button", { name: "Publish and start" }).click();
    await status(page, "running");

    const volunteer = await open();
    await volunteer.page.goto(`${server.url}/`);
    await volunteer.page.getByRole("button", { name: "Start" }).click();
    await status(page, "done");
    expect(await page.getByTestId("count-failed").textContent()).toBe("1");
    expect(await page.getByTestId("last-error").textContent()).toContain("odd input 15");
    await page.getByRole("button", { name: "Show failed chunks" }).click();
    const failed = page.getByRole("table", { name: "Failed chunks" });
    await failed.waitFor();
    expect(await failed.getByRole("row").nth(1).textContent()).toContain("odd input 15");
    await shot(page, "task-failed-chunk");

    // Retry: the chunk runs again (and fails again, the code being what it is).
    expect(await volunteer.page.getByTestId("chunks-failed").textContent()).toBe("1");
    // A task that ended with a failed chunk is not a plain "done".
    expect(await page.getByTestId("task-status").textContent()).toBe("done with failures");
    await page.getByRole("button", { name: "Retry failed" }).click();
    // Retry says what it did.
    await expect.poll(() => page.getByTestId("action-notice").textContent()).toMatch(/^Retried 1 failed chunk: it goes to volunteers again, .*the task is running again\.$/);
    await until("the volunteer to run the retried chunk", async () => (await volunteer.page.getByTestId("chunks-failed").textContent()) === "2", 60_000);
    await until(
      "the retried chunk to fail again",
      async () => {
        const text = await page.getByTestId("task-status").textContent();
        return text === "done with failures" && (await page.getByTestId("count-failed").textContent()) === "1";
      },
      60_000,
    );
    expect(await page.getByRole("alert").count()).toBe(0);
    await volunteer.context.close();
    await context.close();
    expect(problems).toEqual([]);
  });

  it("takes a .wasm module: checks the file, test-runs with ctx.wasm, and keeps its hash", async () => {
    const wasm = await compileWat(fibWat);
    const { context, page } = await open({ signedIn: true });
    await page.goto(`${server.url}/tasks/new`);
    await page.getByLabel("Name").fill("Fibonacci");
    await page.getByRole("textbox", { name: "Work code" }).fill(`export default function work(n, ctx) {
  return String(ctx.wasm.exports.fib(n));
}
`);
    await page.getByLabel("Inputs (JSON array, one element per chunk)").fill("[10, 20, 30]");
    const upload = page.getByLabel(/WebAssembly module/);
    await upload.setInputFiles({ name: "bogus.wasm", mimeType: "application/wasm", buffer: Buffer.from("not wasm") });
    await page.getByText("bogus.wasm is not a valid WebAssembly module.").waitFor();
    // WebAssembly text is compiled in the page, by the CLI's compiler; its mistakes name the line.
    await upload.setInputFiles({ name: "bad.wat", mimeType: "text/plain", buffer: Buffer.from('(module (func (export "f") (result i32) (i32.const 1) (i32.add)))') });
    await page.getByText(/^bad\.wat does not compile: .*bad\.wat:1:\d+: error: type mismatch/s).waitFor({ timeout: 30_000 });
    await upload.setInputFiles({ name: "fib.wat", mimeType: "text/plain", buffer: Buffer.from(fibWat) });
    await page.getByText(/^fib\.wat, [\d,]+ bytes \(compiled from WebAssembly text\)$/).waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: "Test run" }).click();
    await until("the .wat test run", async () => (await page.getByTestId("test-result").count()) === 3, 30_000);
    expect(await page.getByTestId("test-result").allTextContents()).toEqual([10, 20, 30].map((n) => JSON.stringify(String(fib(n)))));
    await upload.setInputFiles({ name: "fib.wasm", mimeType: "application/wasm", buffer: Buffer.from(wasm) });
    await page.getByText(`fib.wasm, ${wasm.length} bytes`).waitFor();
    await page.getByRole("button", { name: "Test run" }).click();
    await until("the wasm test run", async () => (await page.getByTestId("test-result").count()) === 3, 30_000);
    expect(await page.getByTestId("test-result").allTextContents()).toEqual([10, 20, 30].map((n) => JSON.stringify(String(fib(n)))));
    await page.getByRole("button", { name: "Save as draft" }).click();
    await status(page, "draft");
    await page.getByText(`sha256 ${sha256Hex(wasm)}`).waitFor();
    await context.close();
    expect(problems).toEqual([]);
  });

  it("shows a test run's progress and stops it", async () => {
    const { context, page } = await open({ signedIn: true });
    await page.goto(`${server.url}/tasks/new`);
    await page.getByRole("textbox", { name: "Work code" }).fill(`export default async function work(n, ctx) {
  ctx.progress(0.5, "half way");
  while (!ctx.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 50));
  throw new Error("stopped");
}
`);
    await page.getByLabel("Inputs (JSON array, one element per chunk)").fill("[1]");
    await page.getByRole("button", { name: "Test run" }).click();
    await page.getByRole("list", { name: "Test run progress" }).getByText("half way").waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: "Stop" }).click();
    await page.getByTestId("test-run-summary").filter({ hasText: "0 of 1 chunk succeeded, 1 failed" }).waitFor();
    expect(await page.getByTestId("test-error").textContent()).toMatch(/^cancelled/);
    await context.close();
    expect(problems).toEqual([]);
  });

  it("works from the keyboard: a skip link, forms that submit with Enter, an editor that lets Tab go", async () => {
    const { context, page } = await open();
    await page.goto(`${server.url}/signin`);
    await page.getByLabel("Email").waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    await page.getByLabel("Email").focus();
    await page.keyboard.type("grace@example.com");
    await page.keyboard.press("Tab");
    await page.keyboard.type("a long password");
    await page.keyboard.press("Enter");
    await page.waitForURL(`${server.url}/tasks`);
    await page.goto(`${server.url}/tasks/new`);
    await page.getByRole("textbox", { name: "Work code" }).focus();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.closest(".cm-editor") === null && document.activeElement !== document.body)).toBe(true);
    await context.close();
    expect(problems).toEqual([]);
  });

  it("remembers the volunteer's options, holds on battery, pauses while hidden and says when offline", async () => {
    // A device on battery, as the Battery API reports it.
    const { context, page } = await open({
      init: () => {
        const battery = Object.assign(new EventTarget(), { charging: false, level: 0.5 });
        Object.defineProperty(navigator, "getBattery", { value: () => Promise.resolve(battery), configurable: true });
      },
    });
    await page.goto(`${server.url}/`);
    await page.getByLabel("Only when on power").check();
    await page.getByRole("slider", { name: "Threads" }).fill("1");
    await page.reload();
    expect(await page.getByLabel("Only when on power").isChecked()).toBe(true);
    expect(await page.getByRole("slider", { name: "Threads" }).inputValue()).toBe("1");

    await page.getByRole("button", { name: "Start" }).click();
    await page.getByText("Held: this device is on battery.").waitFor();
    // Started and held: "On hold" beside the Pause button, not "Not started".
    expect(await page.getByTestId("state").textContent()).toBe("On hold");
    await page.getByLabel("Only when on power").uncheck();
    await until("the page to ask for work", async () => (await page.getByTestId("state").textContent()) === "Waiting for work", 30_000);

    await page.getByLabel("Pause when this tab is hidden").check();
    const setHidden = (hidden: boolean) =>
      page.evaluate((value) => {
        Object.defineProperty(document, "hidden", { value, configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
      }, hidden);
    await setHidden(true);
    await until("the page to pause while hidden", async () => (await page.getByTestId("state").getAttribute("data-state")) === "paused", 30_000);
    expect(await page.getByTestId("state").textContent()).toBe("On hold");
    await page.getByText("Held: this tab is hidden.").waitFor();
    await setHidden(false);
    await until("the page to resume when shown", async () => (await page.getByTestId("state").getAttribute("data-state")) !== "paused", 30_000);
    await shot(page, "volunteer-options");

    // Offline: said so, and the page comes back by itself.
    await context.setOffline(true);
    await page.getByText("Offline: the page reconnects by itself").waitFor();
    await context.setOffline(false);
    await until("the page to reconnect", async () => (await page.getByTestId("state").textContent()) === "Waiting for work", 30_000);
    expect(await page.getByText("Offline: the page reconnects by itself").count()).toBe(0);
    await context.close();
    expect(problems).toEqual([]);
  });
});
