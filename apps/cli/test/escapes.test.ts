// Terminal escapes in text others wrote (docs/architecture.md, "Printing what others wrote"): a
// hostile volunteer's progress message, error, console lines and name, and a creator's task and
// key names, sent through the real server, must reach no CLI output as raw control characters;
// the SDK's job events give them escaped with the raw text beside. Then the same through real
// Chromium: `volunteer --show-console` and `run`.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { blockReports, chunksOfLeases, createClient, type JobConsoleOutput, type JobRunningChunk, type NodeClient, type Task } from "@crowdcompute/sdk/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, fixtures, freePortPair, parseJsonLines, removeTempDirs, runCli, type ServerProcess, spawnCli, startServerProcess, tempDir, until } from "./helpers.ts";

/** Sets the clipboard, the title, clears the screen, a fake hyperlink, C1 CSI and OSC, BEL, backspace, CR, a right-to-left override and DEL. */
const hostile = "A\x1b]52;c;cHduZWQ=\x07B\x1b]0;title\x07C\x1b[2J\x1b[HD\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\E\u009b31mF\u009d0;t\u009cG\bH\rI\u202eJ\x7fK";
/** What the CLI shows of it. */
const shown = "A\\x1b]52;c;cHduZWQ=\\x07B\\x1b]0;title\\x07C\\x1b[2J\\x1b[HD\\x1b]8;;http://evil.example/\\x1b\\link\\x1b]8;;\\x1b\\E\\u009b31mF\\u009d0;t\\u009cG\\x08H\\rI\\u202eJ\\x7fK";
/** Where the first character a terminal may act on is, but the newline and tab of line-structured output; -1 if none. */
function firstRawControl(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const c0 = c < 0x20 && c !== 0x0a && c !== 0x09;
    const c1 = c >= 0x7f && c <= 0x9f;
    const bidi = c === 0x61c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    if (c0 || c1 || bidi) return i;
  }
  return -1;
}

/** Fails with the offending output when a raw control character reached stdout or stderr (CSV's CRLF aside). */
function expectClean(what: string, result: Pick<CliResult, "stdout" | "stderr">, { csv = false }: { csv?: boolean } = {}) {
  for (const [stream, text] of [
    ["stdout", result.stdout],
    ["stderr", result.stderr],
  ] as const) {
    const checked = csv ? text.replaceAll("\r\n", "\n") : text;
    const at = firstRawControl(checked);
    expect(at === -1 ? null : `${what}: ${stream} has U+${checked.charCodeAt(at).toString(16).padStart(4, "0")} in ${JSON.stringify(checked.slice(Math.max(0, at - 40), at + 40))}`).toBeNull();
  }
}

describe("text others wrote, printed by the CLI and given by the SDK", () => {
  let server: ServerProcess;
  let env: Record<string, string>;
  let creator: NodeClient;

  beforeAll(async () => {
    server = await startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    const home = tempDir("home");
    env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: server.url };
    const login = await runCli(["login", "--register", "--email", "escapes@example.com", "--password-stdin"], { env, input: "a long password\n" });
    expect(login.code).toBe(0);
    const anonymous = createClient({ baseUrl: server.url });
    const { key } = await anonymous.withToken((await anonymous.login("escapes@example.com", "a long password")).token).createApiKey("escapes");
    creator = createClient({ baseUrl: server.url, token: key });
  });

  afterAll(async () => {
    await server?.stop();
    removeTempDirs();
  });

  it("escapes a hostile volunteer's and creator's text in status, chunks, tasks, results, submit, clone and keys", async () => {
    // A creator's own names: submit and clone print them back.
    const submitted = await runCli(["submit", join(fixtures, "lcg/work.js"), "--range", "0:40:1:10", "--name", hostile, "--attempts", "1", "--start"], { env });
    expect(submitted.code).toBe(0);
    expectClean("submit", submitted);
    expect(submitted.stdout).toContain(`(${shown})`);
    const task = (await creator.listTasks({ limit: 1 })).items[0]!;
    expect(task.name).toBe(hostile);
    const replicated = await creator.createTask({ name: "replicated", code: "export default (x) => x", inputs: [1], replication: 2, quorum: 2, start: true });

    // A volunteer named with escapes: computes chunk 0 with console output and a result holding
    // C1 controls, fails chunk 1 with a hostile error, reports hostile progress for chunk 3 and
    // keeps it, and votes on the replicated task.
    const anonymous = createClient({ baseUrl: server.url });
    const volunteer = anonymous.withToken((await anonymous.createVolunteer(hostile)).token);
    const leases = (await volunteer.lease({ max: 64, capabilities: { threads: 32 } })).leases;
    const chunks = chunksOfLeases(leases);
    const ofTask = chunks.filter((chunk) => chunk.taskId === task.id);
    expect(ofTask.map((chunk) => chunk.index)).toEqual([0, 1, 2, 3]);
    const chunk3 = ofTask[3]!;
    await volunteer.heartbeat(
      leases.map((lease) => lease.leaseId),
      { progress: { [chunk3.leaseId]: [{ offset: chunk3.offset, fraction: 0.5, message: hostile }] } },
    );
    const consoleLines = [
      { level: "log" as const, text: `first ${hostile}\nsecond line \x1b[31mred` },
      { level: "warn" as const, text: hostile },
    ];
    await volunteer.submitResults(
      blockReports([
        { chunk: ofTask[0]!, result: { text: "C1 \u009b2J and \u202e reversed" }, console: { lines: consoleLines } },
        { chunk: ofTask[1]!, error: { kind: "throw", message: hostile }, console: { lines: [{ level: "error", text: hostile }] } },
        { chunk: ofTask[2]!, result: 2 },
        ...chunks.filter((chunk) => chunk.taskId === replicated.id).map((chunk) => ({ chunk, result: 1 })),
      ]),
    );

    const paths: [string, string[], { csv?: boolean }?][] = [
      ["status", ["status", task.id]],
      ["status --json", ["status", task.id, "--json"]],
      ["status --chunk 0", ["status", task.id, "--chunk", "0"]],
      ["status --chunk 1", ["status", task.id, "--chunk", "1"]],
      ["status --chunk 3", ["status", task.id, "--chunk", "3"]],
      ["status --chunk 0 --json", ["status", task.id, "--chunk", "0", "--json"]],
      ["status --chunk (a vote)", ["status", replicated.id, "--chunk", "0"]],
      ["chunks", ["chunks", task.id]],
      ["chunks --json", ["chunks", task.id, "--json"]],
      ["tasks", ["tasks"]],
      ["tasks --json", ["tasks", "--json"]],
      ["results", ["results", task.id]],
      ["results --format csv", ["results", task.id, "--format", "csv"], { csv: true }],
      ["clone", ["clone", task.id]],
    ];
    const outputs = new Map<string, CliResult>();
    for (const [what, args, options] of paths) {
      const result = await runCli(args, { env });
      expect({ what, code: result.code, stderr: result.stderr }).toMatchObject({ what, code: 0 });
      expectClean(what, result, options);
      outputs.set(what, result);
    }
    // The text is shown, escaped, where each command shows it.
    expect(outputs.get("status")!.stdout).toContain(`${task.id}  ${shown}`);
    expect(outputs.get("status")!.stdout).toContain(`last error: chunk 1: throw: ${shown}`);
    expect(outputs.get("status --chunk 0")!.stdout).toMatch(/ {4}log +first A\\x1b\]52;.*K\n {10}second line \\x1b\[31mred\n {4}warn +A\\x1b/);
    expect(outputs.get("status --chunk 1")!.stdout).toContain(`  error     throw: ${shown}`);
    expect(outputs.get("status --chunk 3")!.stdout).toContain(`50 % (${shown})`);
    expect(outputs.get("status --chunk (a vote)")!.stdout).toContain(`from ${shown}`);
    expect(outputs.get("chunks")!.stdout).toContain(`throw: ${shown}`);
    expect(outputs.get("tasks")!.stdout).toContain(shown);
    expect(outputs.get("clone")!.stdout).toContain(`(${shown})`);
    // JSON stays the same values: only the characters JSON.stringify leaves raw are written as \u escapes.
    expect(JSON.parse(outputs.get("status --chunk 0 --json")!.stdout)).toMatchObject({ console: { lines: consoleLines } });
    expect((JSON.parse(outputs.get("tasks --json")!.stdout) as Task[]).find((t) => t.id === task.id)!.name).toBe(hostile);
    expect(parseJsonLines(outputs.get("results")!.stdout)[0]).toEqual({ index: 0, input: { start: 0, end: 10, step: 1 }, status: "done", result: { text: "C1 \u009b2J and \u202e reversed" } });
    expect(outputs.get("results --format csv")!.stdout).toContain("C1 \\u009b2J and \\u202e reversed");

    // Chunk 3 is reported: the task ends, and watching and following print its last error too.
    await volunteer.submitResults(blockReports([{ chunk: chunk3, result: 3 }]));
    for (const [what, args, options] of [
      ["status --watch", ["status", task.id, "--watch", "--allow-failures"]],
      ["results --follow", ["results", task.id, "--follow", "--allow-failures"]],
      ["results --follow csv", ["results", task.id, "--follow", "--allow-failures", "--format", "csv"], { csv: true }],
    ] as [string, string[], { csv?: boolean }?][]) {
      const result = await runCli(args, { env, timeoutMs: 30_000 });
      expect({ what, code: result.code }).toEqual({ what, code: 0 });
      expectClean(what, result, options);
      if (what === "status --watch") expect(result.stderr).toContain(`last error: chunk 1: throw: ${shown}`);
    }

    // A key's name, as `keys create` and `keys list` print it.
    const key = await runCli(["keys", "create", "--name", hostile, "--password-stdin"], { env, input: "a long password\n" });
    expect(key.code).toBe(0);
    expectClean("keys create", key);
    expect(key.stderr).toContain(`(${shown})`);
    const keys = await runCli(["keys", "list", "--password-stdin"], { env, input: "a long password\n" });
    expectClean("keys list", keys);
    expect(keys.stdout).toContain(shown);
  });

  it("the SDK's job events give console lines and progress messages escaped, with the raw text beside", async () => {
    const job = await creator.compute([1, 2], (n: number) => n, { name: "sdk escapes" });
    const outputs: JobConsoleOutput[] = [];
    const running: JobRunningChunk[] = [];
    job.on("console", (output) => outputs.push(output));
    job.on("chunks", (items) => running.push(...items));
    const anonymous = createClient({ baseUrl: server.url });
    const volunteer = anonymous.withToken((await anonymous.createVolunteer("sdk")).token);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the job's stream is open
    let leases: Awaited<ReturnType<typeof volunteer.lease>>["leases"] = [];
    await until("a lease of the job's chunks", async () => (leases = (await volunteer.lease({ max: 8, capabilities: { threads: 4 } })).leases.filter((l) => l.taskId === job.id)).length > 0);
    const chunks = chunksOfLeases(leases);
    await volunteer.heartbeat(
      leases.map((lease) => lease.leaseId),
      { progress: { [chunks[0]!.leaseId]: [{ offset: chunks[0]!.offset, fraction: 0.25, message: hostile }] } },
    );
    await until("the hostile progress message", () => running.some((chunk) => chunk.rawMessage === hostile));
    await volunteer.submitResults(blockReports(chunks.map((chunk) => ({ chunk, result: 1, console: { lines: [{ level: "log" as const, text: `${hostile}\n\tnext` }] } }))));
    await job.done();
    const progress = running.find((chunk) => chunk.rawMessage === hostile)!;
    expect(progress.message).toBe(shown);
    expect(outputs.length).toBe(chunks.length);
    for (const output of outputs) expect(output.lines).toEqual([{ level: "log", text: `${shown}\n\tnext`, raw: `${hostile}\n\tnext` }]);
  });

  it("`volunteer --show-console` and `run` print work code's hostile console lines escaped (real Chromium)", async () => {
    const dir = tempDir("hostile-work");
    const work = join(dir, "work.js");
    writeFileSync(
      work,
      `export default function work(n) {\n  console.log(${JSON.stringify(hostile)} + "\\nnext line");\n  console.warn(${JSON.stringify(hostile)});\n  throw new Error(${JSON.stringify(hostile)});\n}\n`,
    );
    const inputs = join(dir, "in.json");
    writeFileSync(inputs, "[1, 2]");

    const run = await runCli(["run", work, "--inputs", inputs], { env });
    expect(run.code).toBe(1);
    expectClean("run", run);
    expect(run.stderr).toContain(`[chunk 0] ${shown}\n    next line`);
    expect(run.stderr).toContain(`[chunk 1] warn: ${shown}`);
    expect(run.stderr).toContain(`first: chunk 0: throw: ${shown}`);
    expect((parseJsonLines(run.stdout) as { error: { message: string } }[]).map((line) => line.error.message)).toEqual([hostile, hostile]);

    const submitted = await runCli(["submit", work, "--inputs", inputs, "--attempts", "1", "--start", "--json"], { env });
    const task = JSON.parse(submitted.stdout) as Task;
    const child = spawnCli(["volunteer", "--threads", "1", "--show-console"], env);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (data) => (stdout += String(data)));
    child.stderr!.on("data", (data) => (stderr += String(data)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      await until("the console lines of both chunks", () => stdout.includes(`[chunk 1 of task ${task.id}] ${shown}`) && stdout.split(`[chunk 0 of task ${task.id}]`).length === 3, 120_000);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expectClean("volunteer --show-console", { stdout, stderr });
    expect(stdout).toContain(`[chunk 0 of task ${task.id}] ${shown}\n    next line`);
    // Who it computed as, in the plain output: this machine's volunteer, made for the signed-in account.
    expect(stderr).toMatch(/^computing as ".+" \(new volunteer \S+, for escapes@example\.com\)$/m);
  });
});
