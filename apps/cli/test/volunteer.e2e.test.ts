// The whole path from the terminal: `submit`, then two `crowdcompute volunteer` processes
// (headless Chromium on the real volunteer page) compute it, one killed with SIGKILL
// mid-run; `results` must equal a computation done here. Then a volunteer rides out a
// server restart and a crashed page.
import { type ChildProcess, execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Client, createClient, type Task } from "@crowdcompute/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { alive, expectedLcg, fixtures, freePortPair, parseJsonLines, removeTempDirs, runCli, type ServerProcess, seeds, spawnCli, startServerProcess, tempDir, until } from "./helpers.ts";

const work = join(fixtures, "lcg/work.js");

interface VolunteerEvent {
  event: string;
  level?: string;
  text?: string;
  pid?: number | null;
  profile?: string;
  instance?: number;
  cpuPercent?: number;
  requested?: number;
  chunksDone?: number;
  creditMs?: number;
  reason?: string;
}

/** A running `crowdcompute volunteer --json`, its events parsed as they come. */
function startVolunteer(args: string[], env: Record<string, string>) {
  const child = spawnCli(["volunteer", "--json", ...args], env);
  const events: VolunteerEvent[] = [];
  let stderr = "";
  let pending = "";
  child.stdout!.on("data", (data) => {
    pending += String(data);
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as VolunteerEvent);
  });
  child.stderr!.on("data", (data) => (stderr += String(data)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    events,
    exited,
    stderr: () => stderr,
    browserPids: () => events.filter((e) => e.event === "browser").map((e) => e.pid!),
    chunksDone: () => events.filter((e) => e.event === "progress").at(-1)?.chunksDone ?? 0,
    creditMs: () => events.filter((e) => e.event === "progress").at(-1)?.creditMs ?? 0,
  };
}

/** The Chromium renderers under a browser process (its page and the sandbox frame). */
function renderersOf(browserPid: number): number[] {
  const children = readFileSync(`/proc/${browserPid}/task/${browserPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  const found: number[] = [];
  for (const pid of children) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmdline.includes("--type=renderer")) found.push(pid);
      // The zygote holds the renderers on Linux: look one level further down.
      if (cmdline.includes("--type=zygote")) found.push(...renderersOf(pid));
    } catch {
      // gone already
    }
  }
  return found;
}

describe("crowdcompute volunteer", () => {
  let server: ServerProcess;
  let env: Record<string, string>;
  let creator: Client;
  const started: ChildProcess[] = [];
  const orphanedProfiles: string[] = [];

  beforeAll(async () => {
    server = await startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    const anonymous = createClient({ baseUrl: server.url });
    const session = await anonymous.register("creator@example.com", "a long password");
    const { key } = await anonymous.withToken(session.token).createApiKey("e2e");
    creator = anonymous.withToken(key);
    env = { XDG_CONFIG_HOME: tempDir("config"), CROWDCOMPUTE_SERVER: server.url, CROWDCOMPUTE_API_KEY: key };
  });

  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  afterAll(async () => {
    await server?.stop();
    // The SIGKILLed volunteer could not delete its Chromium profile.
    removeTempDirs(...orphanedProfiles);
  });

  async function submit(count: number, extra: string[] = []): Promise<{ task: Task; inputs: { seed: number }[] }> {
    const inputs = seeds(count);
    const file = join(tempDir("inputs"), "in.ndjson");
    writeFileSync(file, inputs.map((input) => JSON.stringify(input)).join("\n"));
    const submitted = await runCli(["submit", work, "--inputs", file, "--timeout", "2000", "--start", "--json", ...extra], { env });
    expect(submitted.stderr).toBe("");
    expect(submitted.code).toBe(0);
    return { task: JSON.parse(submitted.stdout) as Task, inputs };
  }

  async function expectResults(task: Task, inputs: { seed: number }[]) {
    const watched = await runCli(["status", task.id, "--watch"], { env, timeoutMs: 240_000 });
    expect(watched.code).toBe(0);
    const downloaded = await runCli(["results", task.id], { env });
    expect(downloaded.code).toBe(0);
    const lines = parseJsonLines(downloaded.stdout);
    expect(lines).toEqual(inputs.map((input, index) => ({ index, input, status: "done", result: expectedLcg(index, input.seed) })));
  }

  it("computes a submitted task with two volunteers, one killed mid-run, and exits 0 on SIGTERM", async () => {
    const { task, inputs } = await submit(400);
    const stays = startVolunteer(["--threads", "1"], env);
    const killed = startVolunteer(["--threads", "1"], env);
    started.push(stays.child, killed.child);

    // Kill the second one once it has computed chunks, while the task is still running.
    await until("the second volunteer to compute chunks", () => killed.chunksDone() > 0, 120_000);
    const midRun = await creator.getTask(task.id);
    expect(midRun.status).toBe("running");
    const [killedBrowser] = killed.browserPids();
    expect(killedBrowser).toBeGreaterThan(0);
    orphanedProfiles.push(...killed.events.filter((e) => e.event === "browser").map((e) => e.profile!));
    killed.child.kill("SIGKILL");
    expect(await killed.exited).toBe(null);
    // Its Chromium must not compute on as an orphan.
    await until("the killed volunteer's Chromium to exit", () => !alive(killedBrowser!), 30_000);

    await expectResults(task, inputs);
    expect(stays.chunksDone()).toBeGreaterThan(0);

    // SIGTERM: browsers closed, a summary, exit 0.
    const [browser] = stays.browserPids();
    stays.child.kill("SIGTERM");
    expect(await stays.exited).toBe(0);
    expect(stays.events.at(-1)).toMatchObject({ event: "stopped" });
    expect(alive(browser!)).toBe(false);
    expect(existsSync(stays.events.find((e) => e.event === "browser")!.profile!)).toBe(false);
  });

  it("keeps volunteering across a server restart and reloads a page that crashed", async () => {
    const volunteer = startVolunteer(["--threads", "2"], env);
    started.push(volunteer.child);
    const first = await submit(60, ["--name", "before restart"]);
    await expectResults(first.task, first.inputs);

    // The server goes away and comes back on the same port and data.
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    server = await startServerProcess({ port: server.port, dataDir: server.dataDir });
    const second = await submit(60, ["--name", "after restart"]);
    await expectResults(second.task, second.inputs);
    // The progress line follows the page each second.
    const doneBeforeCrash = await until("the progress line to count both tasks", () => volunteer.chunksDone() >= 120 && volunteer.chunksDone(), 30_000);
    // The server's credit for the results that won (all of them: one copy each) shows on the line.
    await until("credit on the progress line", () => volunteer.creditMs() > 0, 30_000);

    // Kill the page's renderer processes: the page dies, and the CLI must load it again.
    const reloadsBefore = volunteer.events.filter((e) => e.event === "reload").length;
    const [browser] = volunteer.browserPids();
    const renderers = renderersOf(browser!);
    expect(renderers.length).toBeGreaterThan(0);
    let killedRenderers = 0;
    for (const pid of renderers) {
      try {
        process.kill(pid, "SIGKILL");
        killedRenderers += 1;
      } catch {
        // A spare renderer may exit on its own between the listing and the kill.
      }
    }
    expect(killedRenderers).toBeGreaterThan(0);
    await until("a reload of the crashed page", () => volunteer.events.filter((e) => e.event === "reload").length > reloadsBefore, 60_000);
    expect(volunteer.events.filter((e) => e.event === "reload").at(-1)).toMatchObject({ reason: "the page crashed" });
    const third = await submit(60, ["--name", "after crash"]);
    await expectResults(third.task, third.inputs);
    // Counted across the reload: the new page's figures add to the old one's.
    await until("the progress line to count the third task too", () => volunteer.chunksDone() >= doneBeforeCrash + 60, 30_000);

    volunteer.child.kill("SIGINT");
    expect(await volunteer.exited).toBe(0);
  });

  it("prints work code's console with --show-console, and `status --chunk N` shows what a chunk wrote", async () => {
    const file = join(tempDir("chatty"), "in.json");
    writeFileSync(file, JSON.stringify([{ n: 0 }, { n: 1 }, { n: 2 }]));
    const submitted = await runCli(["submit", join(fixtures, "chatty.js"), "--inputs", file, "--start", "--json"], { env });
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    const volunteer = startVolunteer(["--threads", "1", "--show-console"], env);
    started.push(volunteer.child);
    expect((await runCli(["status", task.id, "--watch"], { env, timeoutMs: 120_000 })).code).toBe(0);
    await until("the console lines", () => volunteer.events.filter((e) => e.event === "console").length >= 4);
    const printed = volunteer.events.filter((e) => e.event === "console").map((e) => [e.level, e.text]);
    expect(printed).toEqual(
      expect.arrayContaining([
        ["log", `[chunk 0 of task ${task.id}] input 0`],
        ["log", `[chunk 1 of task ${task.id}] input 1`],
        ["warn", `[chunk 1 of task ${task.id}] one is odd`],
        ["log", `[chunk 2 of task ${task.id}] input 2`],
      ]),
    );
    volunteer.child.kill("SIGTERM");
    expect(await volunteer.exited).toBe(0);

    const shown = await runCli(["status", task.id, "--chunk", "1"], { env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("done");
    expect(shown.stdout).toMatch(/console +of the attempt that gave the result/);
    expect(shown.stdout).toMatch(/log +input 1\n +warn +one is odd/);
    const json = JSON.parse((await runCli(["status", task.id, "--chunk", "1", "--json"], { env })).stdout) as { console: { lines: { level: string; text: string }[] } };
    expect(json.console.lines).toEqual([
      { level: "log", text: "input 1" },
      { level: "warn", text: "one is odd" },
    ]);
    expect((await runCli(["status", task.id, "--chunk", "3"], { env })).code).toBe(1);
  });

  it("runs a task submitted with --wasm on two browsers of one command: the module reaches the sandbox as ctx.wasm", async () => {
    const dir = join(fixtures, "../../../../examples/wasm-collatz");
    const submitted = await runCli(["submit", join(dir, "work.js"), "--wasm", join(dir, "collatz.wat"), "--range", "1:1000000:1:50000", "--start", "--json"], { env });
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task.wasmSha256).toMatch(/^[0-9a-f]{64}$/);
    // Two browsers from one command this time, each at a CPU share the page rounds to its step.
    const volunteer = startVolunteer(["--threads", "1", "--instances", "2", "--cpu", "55"], env);
    started.push(volunteer.child);
    const watched = await runCli(["status", task.id, "--watch"], { env, timeoutMs: 240_000 });
    expect(watched.code).toBe(0);
    const browsers = volunteer.events.filter((e) => e.event === "browser");
    expect(new Set(browsers.map((e) => e.pid)).size).toBe(2);
    const shares = volunteer.events.filter((e) => e.event === "cpu");
    expect(shares.map((e) => [e.instance, e.cpuPercent, e.requested]).sort()).toEqual([
      [1, 60, 55],
      [2, 60, 55],
    ]);
    expect(new Set(browsers.map((e) => e.profile)).size).toBe(2);
    const lines = parseJsonLines((await runCli(["results", task.id], { env })).stdout) as { status: string; result: { n: number; steps: number } }[];
    expect(lines.length).toBe(20);
    expect(lines.every((line) => line.status === "done")).toBe(true);
    // The longest chain under a million, a known figure.
    const best = lines.map((line) => line.result).reduce((a, b) => (b.steps > a.steps ? b : a));
    expect(best).toEqual({ n: 837_799, steps: 524 });
    volunteer.child.kill("SIGTERM");
    expect(await volunteer.exited).toBe(0);
    for (const browser of browsers) expect(alive(browser.pid!)).toBe(false);
  });

  it("runs a task submitted with --webgpu on a `volunteer --webgpu` (ctx.gpu, SwiftShader here)", async () => {
    const dir = join(fixtures, "../../../../examples/webgpu-pi");
    const submitted = await runCli(["submit", join(dir, "work.js"), "--webgpu", "--range", "0:2000000:1:250000", "--start", "--json"], { env });
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task.requires).toEqual({ webgpu: true });
    const volunteer = startVolunteer(["--threads", "1", "--webgpu"], env);
    started.push(volunteer.child);
    const watched = await runCli(["status", task.id, "--watch"], { env, timeoutMs: 240_000 });
    expect(watched.code).toBe(0);
    const results = await runCli(["results", task.id], { env });
    const verified = execFileSync(process.execPath, [join(dir, "verify.js")], { input: results.stdout, encoding: "utf8" });
    expect(verified).toMatch(/^2000000 samples, π ≈ 3\.14\d+, 0 chunks wrong$/m);
    volunteer.child.kill("SIGTERM");
    expect(await volunteer.exited).toBe(0);
  });
});
