// `clone --watch` follows the clone to its end as `submit --watch` does, computed by a real
// `crowdcompute volunteer` (headless Chromium); `submit work.js` names the task after its
// directory (after the file when the file's name says more), and says how to choose.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Client, createClient, type Task } from "@crowdcompute/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fixtures, freePortPair, parseJsonLines, removeTempDirs, runCli, type ServerProcess, spawnCli, startServerProcess, tempDir } from "./helpers.ts";

describe("clone --watch, and the names submit gives", () => {
  let server: ServerProcess;
  let env: Record<string, string>;
  let creator: Client;
  const children: ReturnType<typeof spawnCli>[] = [];

  beforeAll(async () => {
    server = await startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    const anonymous = createClient({ baseUrl: server.url });
    const session = await anonymous.register("creator@example.com", "a long password");
    const { key } = await anonymous.withToken(session.token).createApiKey("clone");
    creator = anonymous.withToken(key);
    env = { XDG_CONFIG_HOME: tempDir("config"), CROWDCOMPUTE_SERVER: server.url, CROWDCOMPUTE_API_KEY: key };
  });
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  afterAll(async () => {
    await server?.stop();
    removeTempDirs();
  });

  it("names a task after its directory for work.js, after the file otherwise, and says so; --name is in the help", async () => {
    const inDirectory = await runCli(["submit", join(fixtures, "lcg/work.js"), "--range", "0:10:1:5"], { env });
    expect(inDirectory.code).toBe(0);
    expect(inDirectory.stdout).toMatch(/^created task \S+ \(lcg\) \(named after its directory: --name to choose\): 2 chunks, draft$/m);
    const byFile = await runCli(["submit", join(fixtures, "range-sum.js"), "--range", "0:10:1:5", "--json"], { env });
    expect((JSON.parse(byFile.stdout) as Task).name).toBe("range-sum");
    const chosen = await runCli(["submit", join(fixtures, "lcg/work.js"), "--range", "0:10:1:5", "--name", "my lcg"], { env });
    expect(chosen.stdout).toMatch(/^created task \S+ \(my lcg\): 2 chunks, draft$/m);
    expect((await creator.listTasks({ limit: 3 })).items.map((task) => task.name)).toEqual(["my lcg", "range-sum", "lcg"]);
    const help = await runCli(["submit", "--help"], { env });
    // Commander wraps help at 80 columns.
    expect(help.stdout.replace(/\s+/g, " ")).toContain("--name <name> task name (default: the directory's name for a work.js, index.js or main.js, else the file's)");
  });

  it("clone --watch starts the clone and follows it to its end, computed by a real volunteer; exit 1 when its chunks fail", async () => {
    const source = await creator.createTask({ name: "source", code: "export default (n) => { if (n === 3) throw new Error('three'); return n * 2; }", inputs: [1, 2, 4], start: false });
    const volunteer = spawnCli(["volunteer", "--threads", "1"], env);
    children.push(volunteer);

    const watched = await runCli(["clone", source.id, "--name", "the clone", "--watch"], { env, timeoutMs: 120_000 });
    expect(watched.stderr).toMatch(/task \S+ done \(3 done, 0 failed\)/);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/^cloned task \S+ as (\S+) \(the clone\): 3 chunks, running$/m);
    expect(watched.stdout).toMatch(/^done: 3\/3 done, 0 failed/m);
    const clone = (await creator.listTasks({ limit: 1 })).items[0]!;
    expect(clone).toMatchObject({ name: "the clone", status: "done" });

    // New code that fails on one input: the watch ends with exit 1, unless failures are allowed;
    // --json prints the clone, then a line per change.
    const failing = join(tempDir("failing"), "fails-on-four.js");
    writeFileSync(failing, "export default (n) => { if (n === 4) throw new Error('four'); return n; }\n");
    const failed = await runCli(["clone", source.id, "--code", failing, "--attempts", "1", "--watch"], { env, timeoutMs: 120_000 });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("exit 1: chunks failed");
    const allowed = await runCli(["clone", source.id, "--code", failing, "--attempts", "1", "--watch", "--allow-failures", "--json"], { env, timeoutMs: 120_000 });
    expect(allowed.code).toBe(0);
    const lines = parseJsonLines(allowed.stdout) as { status: string; counts: { failed: number } }[];
    expect(lines[0]).toMatchObject({ status: "running" });
    expect(lines.at(-1)).toMatchObject({ status: "done", counts: { failed: 1 } });
    volunteer.kill("SIGTERM");
  });
});
