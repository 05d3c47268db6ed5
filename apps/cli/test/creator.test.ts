// The creator commands against the real server process: login, submit, status, lifecycle,
// tasks and results, and the exit codes and messages of everything that can go wrong.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { blockReports, type ChunkOutcomeReport, type Client, chunksOfLeases, createClient, type Task, uploadPartChars } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtures, freePortPair, parseJsonLines, removeTempDirs, runCli, type ServerProcess, seeds, spawnCli, startServerProcess, tempDir, until } from "./helpers.ts";

const work = join(fixtures, "lcg/work.js");

describe("creator commands", () => {
  let server: ServerProcess;
  let env: Record<string, string>;
  let creator: Client;
  let inputs: string;
  let configFile: string;

  beforeAll(async () => {
    server = await startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    const home = tempDir("home");
    configFile = join(home, "config", "crowdcompute", "config.json");
    env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: server.url };
    inputs = join(tempDir("inputs"), "in.ndjson");
    writeFileSync(
      inputs,
      `${seeds(30)
        .map((s) => JSON.stringify(s))
        .join("\n")}\n`,
    );
  });

  afterAll(async () => {
    await server?.stop();
    removeTempDirs();
  });

  const taskCount = async () => (await creator.listTasks({ limit: 200 })).items.length;

  it("login --register stores an API key in the config dir, readable by the owner only", async () => {
    const login = await runCli(["login", "--register", "--email", "creator@example.com", "--password-stdin"], { env, input: "a long password\n" });
    expect(login.stderr).toBe("");
    expect(login.code).toBe(0);
    expect(login.stdout).toContain("Registered and signed in");
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    const config = JSON.parse(readFileSync(configFile, "utf8")) as { defaultServer: string; servers: Record<string, { token: string; kind: string }> };
    expect(config.defaultServer).toBe(server.url);
    const entry = config.servers[server.url]!;
    expect(entry.kind).toBe("api-key");
    expect(entry.token).toMatch(/^cc_/);
    creator = createClient({ baseUrl: server.url, token: entry.token });
    expect(await taskCount()).toBe(0);

    // A wrong password is the server's refusal: exit 1, and the stored key is kept.
    const wrong = await runCli(["login", "--email", "creator@example.com", "--password-stdin"], { env, input: "not the password\n" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401/);
    expect(JSON.parse(readFileSync(configFile, "utf8")).servers[server.url].token).toBe(entry.token);
  });

  it("refuses bad flags and bad files with a clear message, exit 2, and submits nothing", async () => {
    const before = await taskCount();
    const cases: [string[], RegExp][] = [
      [["submit", work], /exactly one of --inputs FILE .* or --range/],
      [["submit", work, "--inputs", inputs, "--range", "0:10:1:2"], /exactly one of --inputs/],
      [["submit", join(fixtures, "missing.js"), "--inputs", inputs], /cannot read .*missing\.js \(ENOENT\)/],
      [["submit", join(fixtures, "syntax-error.js"), "--inputs", inputs], /cannot bundle .*syntax-error\.js:\n.*syntax-error\.js:2:\d+: Unexpected/],
      [["submit", join(fixtures, "no-default.js"), "--inputs", inputs], /no-default\.js has no default export/],
      [["submit", work, "--inputs", join(fixtures, "bad-line.ndjson")], /bad-line\.ndjson:3: not a JSON value/],
      [["submit", work, "--inputs", join(fixtures, "not-array.json")], /not-array\.json must hold a JSON array/],
      [["submit", work, "--inputs", join(fixtures, "missing.ndjson")], /--inputs: cannot read .*missing\.ndjson \(ENOENT\)/],
      [["submit", work, "--range", "10:0:1:5"], /end \(0\) must be greater than start \(10\)/],
      [["submit", work, "--range", "0:100"], /expected start:end:step:size/],
      [["submit", work, "--range", "0:100:x:5"], /step must be an integer/],
      [["submit", work, "--inputs", inputs, "--timeout", "soon"], /--timeout must be an integer from 100/],
      [["submit", work, "--inputs", inputs, "--attempts", "0"], /--attempts must be an integer from 1 to 100/],
      [["submit", work, "--inputs", inputs, "--bogus"], /unknown option '--bogus'/],
      [["submit"], /missing required argument 'work.js'/],
      [["submit", work, "--inputs", inputs, "--wasm", join(fixtures, "bad.wat")], /--wasm: .*bad\.wat: validate failed:\n.*bad\.wat:1:56: error: type mismatch in i32\.add/],
      [["submit", work, "--inputs", inputs, "--wasm", join(fixtures, "not-array.json")], /--wasm: .*not-array\.json is not a valid WebAssembly module/],
      [["submit", work, "--inputs", inputs, "--wasm", join(fixtures, "missing.wasm")], /--wasm: cannot read .*missing\.wasm \(ENOENT\)/],
      [["results", "x", "--format", "xml"], /Allowed choices are ndjson, csv/],
      [["frobnicate"], /unknown command 'frobnicate'/],
      [["tasks", "--server", "ftp://example.com"], /expected an http\(s\) URL/],
      [["volunteer", "--threads", "0"], /--threads must be an integer from 1 to 64/],
      [["volunteer", "--cpu", "5"], /--cpu must be an integer from 10 to 100/],
      [["volunteer", "--browser", "/nonexistent/chromium"], /--browser: no browser at \/nonexistent\/chromium/],
      [["run", work, "--inputs", inputs, "--browser", "/nonexistent/chromium"], /--browser: no browser at/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, { env });
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe("");
    }
    // No credential at all: a usage error that says how to sign in.
    const signedOut = await runCli(["tasks"], { env: { ...env, XDG_CONFIG_HOME: tempDir("empty") } });
    expect(signedOut.code).toBe(2);
    expect(signedOut.stderr).toContain(`not signed in to ${server.url}: run \`crowdcompute login --server ${server.url}\``);
    expect(await taskCount()).toBe(before);
  });

  it("reports the server's refusals with exit 1", async () => {
    const unknown = await runCli(["status", "01a216d1-010f-74f1-851d-5f9e30c85fdc"], { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 .*task not found/);
    const badKey = await runCli(["tasks"], { env: { ...env, CROWDCOMPUTE_API_KEY: "cc_not_a_real_key" } });
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/401/);
    const closed = await freePortPair();
    const unreachable = await runCli(["tasks", "--server", `http://localhost:${closed}`], { env: { ...env, CROWDCOMPUTE_API_KEY: "cc_x" } });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach the server \(ECONNREFUSED\)/);
  });

  it("submits a draft and walks it through start, pause, resume and cancel", async () => {
    const submitted = await runCli(["submit", work, "--inputs", inputs, "--name", "walk", "--timeout", "5000", "--attempts", "3", "--priority", "7", "--json"], { env });
    expect(submitted.stderr).toBe("");
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task).toMatchObject({ name: "walk", status: "draft", timeoutMs: 5000, maxAttempts: 3, priority: 7, counts: { total: 30 } });
    // The bundle holds the library and the local module, and nothing to import at run time.
    const code = await creator.taskCode(task.id);
    expect(code).toContain("export {");
    expect(code).not.toMatch(/^import /m);
    expect(code).toContain("1664525");

    const steps: [string, string][] = [
      ["start", "running"],
      ["pause", "paused"],
      ["resume", "running"],
      ["cancel", "cancelled"],
    ];
    for (const [action, status] of steps) {
      const result = await runCli([action, task.id], { env });
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`task ${task.id} is ${status}\n`);
      expect((await creator.getTask(task.id)).status).toBe(status);
    }
    const again = await runCli(["pause", task.id], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 .*cannot pause a task that is cancelled/);

    const status = await runCli(["status", task.id], { env });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^task: +\S+ +walk$/m);
    expect(status.stdout).toMatch(/^status: +cancelled$/m);
    expect(status.stdout).toMatch(/^progress: +0% +0 done, 0 failed, 0 running, 30 pending of 30$/m);

    const listed = await runCli(["tasks", "--json"], { env });
    expect((JSON.parse(listed.stdout) as Task[]).map((t) => t.id)).toContain(task.id);
    const table = await runCli(["tasks"], { env });
    expect(table.stdout).toMatch(new RegExp(`^${task.id} +cancelled +0/30 .* walk$`, "m"));
  });

  it("submits a range, and downloads results as NDJSON and CSV once a volunteer has posted them", async () => {
    const submitted = await runCli(["submit", work, "--range", "0:1000:3:50", "--attempts", "1", "--start", "--json"], { env });
    expect(submitted.stderr).toBe("");
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task.counts.total).toBe(Math.ceil(1000 / 150));
    expect(task.status).toBe("running");

    // A volunteer through the API (no browser needed here): lease every chunk and post a result.
    const anonymous = createClient({ baseUrl: server.url });
    const volunteer = anonymous.withToken((await anonymous.createVolunteer("test")).token);
    // A new task gives 2 chunks a thread: 32 threads ask for up to 64.
    const leases = chunksOfLeases((await volunteer.lease({ max: 64, capabilities: { threads: 32 } })).leases).filter((chunk) => chunk.taskId === task.id);
    expect(leases.map((chunk) => chunk.index)).toEqual(Array.from({ length: task.counts.total }, (_, i) => i));
    const outcomes = leases.map((chunk): ChunkOutcomeReport => {
      const input = chunk.input as { start: number; end: number; step: number };
      return chunk.index === 2
        ? { chunk, error: { kind: "throw", message: 'boom, with "quotes", commas' }, cpuMs: 1 }
        : { chunk, result: [(input.end - input.start) / input.step, 'a "quoted", comma'], cpuMs: 1 };
    });
    expect(await volunteer.submitResults(blockReports(outcomes))).toEqual({ accepted: task.counts.total, rejected: [] });

    // The task ended done, but a chunk failed: exit 1, unless failures are accepted.
    const watched = await runCli(["status", task.id, "--watch"], { env, timeoutMs: 30_000 });
    expect(watched.stdout).toMatch(/^done: \d+\/\d+ done, 1 failed/m);
    expect(watched.stderr).toContain("exit 1: chunks failed");
    expect(watched.code).toBe(1);
    const accepted = await runCli(["status", task.id, "--watch", "--allow-failures"], { env, timeoutMs: 30_000 });
    expect(accepted.code).toBe(0);

    const ndjson = await runCli(["results", task.id], { env });
    expect(ndjson.code).toBe(0);
    const lines = parseJsonLines(ndjson.stdout) as { index: number; status: string; input: { start: number } }[];
    expect(lines.map((line) => line.index)).toEqual(leases.map((_, i) => i));
    expect(lines[0]).toEqual({ index: 0, input: { start: 0, end: 150, step: 3 }, status: "done", result: [50, 'a "quoted", comma'] });
    expect(lines[2]).toMatchObject({ index: 2, status: "failed", error: { kind: "throw", message: 'boom, with "quotes", commas' } });
    expect(ndjson.stderr).toContain(`${lines.length} results of task ${task.id}`);

    const csv = await runCli(["results", task.id, "--format", "csv", "--quiet"], { env });
    expect(csv.code).toBe(0);
    expect(csv.stderr).toBe("");
    const rows = csv.stdout.split("\r\n");
    expect(rows[0]).toBe("index,status,input,result,error");
    expect(rows[1]).toBe('0,done,"{""start"":0,""end"":150,""step"":3}","[50,""a \\""quoted\\"", comma""]",');
    expect(rows[3]).toMatch(/^2,failed,"\{""start"":300,""end"":450,""step"":3\}",,"\{""kind"":""throw"",""message"":""boom, with \\""quotes\\"", commas""\}"$/);
    expect(rows.filter(Boolean).length).toBe(lines.length + 1);
  });

  it("status and chunks say what a replicated task's chunks wait for: a trusted copy, more agreeing copies", async () => {
    const submitted = await runCli(["submit", work, "--range", "0:2:1:1", "--replication", "2", "--quorum", "2", "--priority", "9", "--start", "--json"], { env });
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task.counts.total).toBe(2);
    // Two fresh (untrusted) volunteers through the API: they agree on chunk 0, not on chunk 1.
    const anonymous = createClient({ baseUrl: server.url });
    const computeAs = async (name: string, value: (index: number) => unknown) => {
      const volunteer = anonymous.withToken((await anonymous.createVolunteer(name)).token);
      const chunks = chunksOfLeases((await volunteer.lease({ max: 64, capabilities: { threads: 32 } })).leases).filter((chunk) => chunk.taskId === task.id);
      expect(chunks.map((chunk) => chunk.index)).toEqual([0, 1]);
      await volunteer.submitResults(blockReports(chunks.map((chunk): ChunkOutcomeReport => ({ chunk, result: value(chunk.index), cpuMs: 1 }))));
    };
    await computeAs("fresh one", (index) => index);
    await computeAs("fresh two", (index) => (index === 0 ? 0 : "other"));

    const status = await runCli(["status", task.id], { env });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(
      `waiting:    2 chunks: 1 for a trusted volunteer's copy (untrusted copies agree; more of them cannot decide); 1 for more agreeing copies from volunteers that have not computed them; \`crowdcompute chunks ${task.id} --status voting\` for each`,
    );
    const json = JSON.parse((await runCli(["status", task.id, "--json"], { env })).stdout) as Task;
    expect(json.waiting).toEqual({ trustedCopy: 1, moreCopies: 1, examined: 2 });

    const voting = await runCli(["chunks", task.id, "--status", "voting"], { env });
    expect(voting.code).toBe(0);
    const lines = voting.stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("waits for a trusted volunteer's copy (2 untrusted agree)");
    expect(lines[1]).toContain("waits for 1 more agreeing copy (1 copy agrees)");
    const one = await runCli(["status", task.id, "--chunk", "0"], { env });
    expect(one.stdout.split("\n")[0]).toContain("waits for a trusted volunteer's copy (2 untrusted agree)");
    await creator.taskAction(task.id, "cancel");
  });

  it("takes NDJSON inputs of many lines and blank lines", async () => {
    const file = join(tempDir("many"), "many.ndjson");
    writeFileSync(
      file,
      seeds(5000)
        .map((s, i) => (i % 1000 === 0 ? `\n${JSON.stringify(s)}` : JSON.stringify(s)))
        .join("\n"),
    );
    const submitted = await runCli(["submit", work, "--inputs", file, "--json"], { env });
    expect(submitted.code).toBe(0);
    expect((JSON.parse(submitted.stdout) as Task).counts.total).toBe(5000);
  });

  it("uploads NDJSON beyond the inline limits in parts, sealed, before it starts", async () => {
    const count = 120_000;
    const file = join(tempDir("big"), "big.ndjson");
    const line = (i: number) => JSON.stringify({ seed: i, pad: "x".repeat(80) });
    writeFileSync(file, `${Array.from({ length: count }, (_, i) => line(i)).join("\n")}\n`);
    expect(statSync(file).size).toBeGreaterThan(2 * uploadPartChars);
    const submitted = await runCli(["submit", work, "--inputs", file, "--start", "--json"], { env });
    expect(submitted.stderr).toBe("");
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task).toMatchObject({ status: "running", sealed: true, counts: { total: count, pending: count } });
    // The first chunks carry the file's first lines, in order.
    const anonymous = createClient({ baseUrl: server.url });
    const volunteer = anonymous.withToken((await anonymous.createVolunteer("upload check")).token);
    const leases = chunksOfLeases((await volunteer.lease({ max: 64, capabilities: { threads: 32 } })).leases).filter((chunk) => chunk.taskId === task.id);
    expect(leases.length).toBeGreaterThan(0);
    for (const chunk of leases) expect(chunk.input).toEqual({ seed: chunk.index, pad: "x".repeat(80) });
    await creator.taskAction(task.id, "cancel");
  });

  it("submit takes every task option the API takes; bad ones are usage errors", async () => {
    const user = "01a216d1-010f-74f1-851d-5f9e30c85fdc";
    const submitted = await runCli(
      [
        "submit",
        work,
        "--inputs",
        inputs,
        "--name",
        "options",
        "--description",
        "every option",
        "--replication",
        "3",
        "--quorum",
        "2",
        "--tolerance-rel",
        "1e-9",
        "--tolerance-abs",
        "0",
        "--spot-check",
        "0.1",
        "--priority",
        "5",
        "--allow-users",
        `${user}, ${user.replace("fdc", "fdd")}`,
        "--requires-webgpu",
        "--timeout",
        "4000",
        "--attempts",
        "2",
        "--json",
      ],
      { env },
    );
    expect(submitted.stderr).toBe("");
    expect(submitted.code).toBe(0);
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task).toMatchObject({
      name: "options",
      description: "every option",
      replication: 3,
      quorum: 2,
      tolerance: { abs: 0, rel: 1e-9 },
      spotCheck: 0.1,
      priority: 5,
      allowUsers: [user, user.replace("fdc", "fdd")],
      requires: { webgpu: true },
      timeoutMs: 4000,
      maxAttempts: 2,
      status: "draft",
    });
    const before = await taskCount();
    const cases: [string[], RegExp][] = [
      [["--replication", "2", "--quorum", "3"], /--quorum \(3\) must be at most --replication \(2\)/],
      [["--quorum", "2"], /--quorum \(2\) must be at most --replication \(1\)/],
      [["--replication", "17"], /--replication must be an integer from 1 to 16/],
      [["--allow-users", "alice"], /--allow-users takes user ids \(UUIDs\)/],
      [["--tolerance-rel", "-1"], /--tolerance-rel must be a number of 0 or more/],
      [["--tolerance-abs", "Infinity"], /--tolerance-abs must be a number of 0 or more/],
      [["--spot-check", "0"], /--spot-check must be a share more than 0 and at most 1/],
    ];
    for (const [flags, message] of cases) {
      const result = await runCli(["submit", work, "--inputs", inputs, ...flags], { env });
      expect({ flags, code: result.code }).toEqual({ flags, code: 2 });
      expect(result.stderr).toMatch(message);
    }
    expect(await taskCount()).toBe(before);

    // A replicated task's status says what verifying it costs (nothing yet).
    const shown = await runCli(["status", task.id], { env });
    expect(shown.stdout).toMatch(/^verified: +0 copies received, 0 chunks replicated, 0 disagreements, 0 volunteers banned$/m);

    const deleted = await runCli(["delete", task.id], { env });
    expect(deleted).toMatchObject({ code: 0, stdout: `task ${task.id} deleted, with its inputs and results\n` });
    const gone = await runCli(["status", task.id], { env });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/404/);
  });

  it("follows results as a volunteer posts them, resumes after a cursor, and exits 1 on failed chunks unless --allow-failures", async () => {
    const submitted = await runCli(["submit", work, "--range", "0:600:1:50", "--attempts", "1", "--start", "--json"], { env });
    const task = JSON.parse(submitted.stdout) as Task;
    expect(task.counts.total).toBe(12);
    const follower = spawnCli(["results", task.id, "--follow"], env);
    let followed = "";
    follower.stdout!.on("data", (data) => (followed += String(data)));
    let followerErr = "";
    follower.stderr!.on("data", (data) => (followerErr += String(data)));
    const exited = new Promise<number | null>((resolve) => follower.on("close", resolve));

    const anonymous = createClient({ baseUrl: server.url });
    const volunteer = anonymous.withToken((await anonymous.createVolunteer("follow")).token);
    const chunks = chunksOfLeases((await volunteer.lease({ max: 64, capabilities: { threads: 32 } })).leases).filter((chunk) => chunk.taskId === task.id);
    expect(chunks).toHaveLength(12);
    const outcome = (chunk: (typeof chunks)[number]): ChunkOutcomeReport => (chunk.index === 7 ? { chunk, error: { kind: "throw", message: "seven" } } : { chunk, result: { index: chunk.index } });
    await volunteer.submitResults(blockReports(chunks.slice(0, 6).map(outcome)));
    // The first six are out while the task still runs.
    await until("the first six followed lines", () => followed.split("\n").filter(Boolean).length >= 6);
    expect((await creator.getTask(task.id)).status).toBe("running");
    await volunteer.submitResults(blockReports(chunks.slice(6).map(outcome)));

    expect(await exited).toBe(1);
    const lines = parseJsonLines(followed) as { index: number; status: string; cursor: string }[];
    expect(lines.map((line) => line.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(lines.find((line) => line.index === 7)).toMatchObject({ status: "failed", error: { kind: "throw", message: "seven" } });
    for (const line of lines) expect(line.cursor).toMatch(/^\d+-\d+$/);
    expect(followerErr).toContain("12 results followed, 1 failed");

    const allowed = await runCli(["results", task.id, "--follow", "--allow-failures", "--quiet"], { env });
    expect(allowed).toMatchObject({ code: 0, stderr: "" });
    expect(allowed.stdout).toBe(followed);
    const resumed = await runCli(["results", task.id, "--follow", "--after", lines[4]!.cursor, "--allow-failures"], { env });
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toBe(followed.split("\n").slice(5).join("\n"));
    const csv = await runCli(["results", task.id, "--follow", "--format", "csv", "--allow-failures", "--quiet"], { env });
    const rows = csv.stdout.split("\r\n").filter(Boolean);
    expect(rows[0]).toBe("index,status,input,result,error,cursor");
    expect(rows.slice(1).map((row) => row.split(",").at(-1))).toEqual(lines.map((line) => line.cursor));
    expect((await runCli(["results", task.id, "--after", lines[0]!.cursor], { env })).code).toBe(2);

    const failed = await runCli(["chunks", task.id, "--status", "failed", "--json"], { env });
    expect(failed.code).toBe(0);
    expect(parseJsonLines(failed.stdout)).toMatchObject([{ index: 7, status: "failed", lastError: { kind: "throw", message: "seven" } }]);
    const some = await runCli(["chunks", task.id, "--limit", "5"], { env });
    expect(some.stdout.split("\n").filter(Boolean)).toHaveLength(5);
    expect(some.stdout).toMatch(/^ +0 +done/m);
    expect(some.stderr).toContain("5 chunks (more: --limit 10 or --all)");

    const retried = await runCli(["retry-failed", task.id], { env });
    expect(retried).toMatchObject({ code: 0, stdout: `task ${task.id}: 1 failed chunk reopened; it is running\n` });
    const cloned = await runCli(
      [
        "clone",
        task.id,
        "--code",
        join(fixtures, "range-sum.js"),
        "--name",
        "cloned",
        "--priority",
        "9",
        "--memory",
        "512",
        "--replication",
        "2",
        "--quorum",
        "2",
        "--tolerance-abs",
        "0.5",
        "--start",
        "--json",
      ],
      {
        env,
      },
    );
    expect(cloned.stderr).toBe("");
    const copy = JSON.parse(cloned.stdout) as Task;
    expect(copy).toMatchObject({ name: "cloned", priority: 9, memoryMb: 512, replication: 2, quorum: 2, tolerance: { abs: 0.5 }, status: "running", counts: { total: 12, done: 0 } });
    expect(copy.codeSha256).not.toBe(task.codeSha256);
    expect((await runCli(["clone", task.id, "--quorum", "2"], { env })).code).toBe(2);
    for (const id of [task.id, copy.id]) await creator.taskAction(id, "cancel");
  });

  it("lists, creates and revokes API keys, signing in with the account's password", async () => {
    const made = await runCli(["keys", "create", "--name", "ci", "--password-stdin"], { env, input: "a long password\n" });
    expect(made.code).toBe(0);
    const key = made.stdout.trim();
    expect(key).toMatch(/^cc_/);
    expect(made.stderr).toMatch(/shown only now/);
    expect((await createClient({ baseUrl: server.url, token: key }).listTasks()).items.length).toBeGreaterThan(0);
    const listed = JSON.parse((await runCli(["keys", "list", "--password-stdin", "--json"], { env, input: "a long password\n" })).stdout) as { id: string; name: string; revokedAt: string | null }[];
    const ci = listed.find((k) => k.name === "ci")!;
    expect(ci.revokedAt).toBeNull();
    const revoked = await runCli(["keys", "revoke", ci.id, "--password-stdin"], { env, input: "a long password\n" });
    expect(revoked.code).toBe(0);
    const table = await runCli(["keys", "list", "--password-stdin"], { env, input: "a long password\n" });
    expect(table.stdout).toMatch(new RegExp(`^${ci.id} +cc_\\S+ .* ci$`, "m"));
    expect(
      (await createClient({ baseUrl: server.url, token: key })
        .listTasks()
        .catch((error: unknown) => error)) as Error,
    ).toMatchObject({ status: 401 });
    const wrong = await runCli(["keys", "list", "--password-stdin"], { env, input: "not the password\n" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401/);
  });

  it("logout forgets the server's credential", async () => {
    const out = await runCli(["logout"], { env });
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(`Signed out of ${server.url}\n`);
    const after = await runCli(["tasks"], { env });
    expect(after.code).toBe(2);
  });
});
