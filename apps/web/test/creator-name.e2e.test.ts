// Who a volunteer computes for, in real Chromium: a creator that gave no display name (an
// account registered from the CLI) shows as "an unnamed creator", never a raw id; its task
// list asks it for a name, and once given, the volunteer page names it.
import { createClient } from "@crowdcompute/sdk";
import { describe, expect, it } from "vitest";
import { browserTestBackend as backend, serverAndBrowser, signIn } from "./helpers.ts";

/** A chunk of about 3 s that waits on timers: a part is on screen long enough to read. */
const slowCode = `
export default async function work(input) {
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return input;
}`;

describe(`the creator a volunteer computes for, in Chromium (${backend})`, () => {
  const running = serverAndBrowser({ IDLE_RETRY_MS: "300" });

  it("says an unnamed creator rather than an id, and the creator's name once it gives one", async () => {
    const { server, browser } = running;
    const anonymous = createClient({ baseUrl: server.url });
    const session = await anonymous.register("cli-made@example.com", "a long password");
    expect(session.user.name).toBeNull();
    const creator = anonymous.withToken(session.token);
    await creator.createTask({ name: "Slow echo", code: slowCode, inputs: Array.from({ length: 12 }, (_, i) => i), timeoutMs: 20_000, start: true });

    const volunteerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const volunteer = await volunteerContext.newPage();
    await volunteer.goto(`${server.url}/`);
    await volunteer.getByRole("slider", { name: "Threads" }).fill("1");
    await volunteer.getByRole("button", { name: "Start" }).click();
    const part = volunteer.getByTestId("running-part").first();
    await part.waitFor({ timeout: 30_000 });
    await expect.poll(() => part.textContent(), { timeout: 15_000 }).toContain("for an unnamed creator");
    expect(await part.textContent()).not.toContain(session.user.id.slice(0, 8));

    // The creator's task list asks for a name, and keeps it.
    const creatorContext = await browser.newContext();
    await signIn(creatorContext, server, session);
    const tasks = await creatorContext.newPage();
    await tasks.goto(`${server.url}/tasks`);
    await tasks.getByTestId("name-notice").waitFor();
    expect(await tasks.getByTestId("name-notice").textContent()).toContain("an unnamed creator");
    await tasks.getByLabel("Your name for volunteers").fill("Grace Lab");
    await tasks.getByRole("button", { name: "Save name" }).click();
    await expect.poll(() => tasks.getByTestId("name-notice").count()).toBe(0);
    expect((await anonymous.login("cli-made@example.com", "a long password")).user.name).toBe("Grace Lab");

    // The volunteer, reloaded (still started), names the creator.
    await volunteer.reload();
    const named = volunteer.getByTestId("running-part").first();
    await named.waitFor({ timeout: 30_000 });
    await expect.poll(() => named.textContent(), { timeout: 15_000 }).toContain("for Grace Lab");
    await volunteer.getByRole("button", { name: "Pause" }).click();
    await volunteerContext.close();
    await creatorContext.close();
  });
});
