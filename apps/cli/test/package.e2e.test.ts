// The packages people install (docs/architecture.md, "Packages people install"): the
// `crowdcompute` CLI and the SDK are built and packed as they would be published, installed
// from their tarballs in folders outside the workspace with their dependencies from the npm
// registry, and run by the system's `node` (the first one on PATH outside node_modules/.bin,
// 20 on the CI machine) against a server started here: the CLI volunteers, logs in, submits a
// project that imports an npm library, follows the results and dry-runs; a TypeScript script
// type-checks against the SDK alone and computes a job. The CLI's install must stay under 80 MB.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedLcg, fixtures, freePortPair, parseJsonLines, removeTempDirs, repoRoot, type ServerProcess, seeds, startServerProcess, tempDir, until } from "./helpers.ts";

const maxInstallBytes = 80_000_000;

// What a shell outside this repository has: npm's script variables gone, no node_modules/.bin
// (whose `node` is the workspace's Node 24) on PATH.
const path = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((dir) => !dir.includes("node_modules"))
  .join(delimiter);
const outsideEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("npm_") && name !== "NODE_OPTIONS")),
  PATH: path,
  NO_COLOR: "1",
  ...extra,
});

function sh(command: string, args: string[], cwd: string, env = outsideEnv()): string {
  try {
    return execFileSync(command, args, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 150_000 });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`);
  }
}

/** Bytes of every file under `dir` (what the install adds to a disk, blocks aside). */
function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(full);
    else if (entry.isFile()) total += statSync(full).size;
  }
  return total;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("the published packages, installed from their tarballs", () => {
  let work: string;
  let bin: string;
  let cliVersion: string;
  let server: ServerProcess;
  let cliEnv: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];

  /** The installed `crowdcompute`, started by its shebang (the system's node). */
  function start(args: string[], cwd: string, env = cliEnv): { child: ChildProcess; done: Promise<Run>; stdout(): string } {
    const child = spawn(bin, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (data) => (stdout += String(data)));
    child.stderr!.on("data", (data) => (stderr += String(data)));
    const done = new Promise<Run>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    return { child, done, stdout: () => stdout };
  }
  const cli = (args: string[], cwd: string, { input = "", env = cliEnv }: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> => {
    const { child, done } = start(args, cwd, env);
    child.stdin!.end(input);
    return done;
  };

  beforeAll(async () => {
    // The server starts while the packages build and install (the sync steps below leave it be).
    const serverStarting = startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    serverStarting.catch(() => {});
    work = tempDir("packages");
    const systemNode = sh("node", ["--version"], work).trim();
    expect(Number(/^v(\d+)/.exec(systemNode)?.[1])).toBeGreaterThanOrEqual(20);
    console.log(`system node: ${systemNode}`);

    execFileSync(process.execPath, ["scripts/build-dist.ts"], { cwd: join(repoRoot, "apps/cli"), stdio: "pipe" });
    execFileSync(process.execPath, ["scripts/build-dist.ts"], { cwd: join(repoRoot, "packages/sdk"), stdio: "pipe" });
    cliVersion = (JSON.parse(readFileSync(join(repoRoot, "apps/cli/dist/package.json"), "utf8")) as { version: string }).version;
    const packed = (dir: string) => (JSON.parse(sh("npm", ["pack", join(repoRoot, dir), "--pack-destination", work, "--json"], work)) as { filename: string }[])[0]!.filename;
    const cliTarball = join(work, packed("apps/cli/dist"));
    expect(cliTarball).toMatch(new RegExp(`crowdcompute-${cliVersion.replaceAll(".", "\\.")}\\.tgz$`));

    // `npm install -g ./crowdcompute-<v>.tgz` from an empty folder, into a prefix of our own.
    const empty = tempDir("empty");
    sh("npm", ["install", "-g", "--prefix", join(work, "global"), "--no-audit", "--no-fund", cliTarball], empty);
    bin = join(work, "global/bin/crowdcompute");

    server = await serverStarting;
    cliEnv = outsideEnv({ XDG_CONFIG_HOME: tempDir("config"), CROWDCOMPUTE_SERVER: server.url });
  }, 240_000);

  afterAll(async () => {
    // Ctrl-C first, so a volunteer left running by a failure closes its browser and deletes its profile.
    const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
    for (const child of running) child.kill("SIGINT");
    await Promise.all(running.map((child) => until("a crowdcompute process to exit", () => child.exitCode !== null || child.signalCode !== null, 10_000).catch(() => child.kill("SIGKILL"))));
    await server?.stop();
    removeTempDirs();
  });

  it("installs the CLI under 80 MB with nothing but its runtime dependencies", async () => {
    const installed = join(work, "global/lib/node_modules/crowdcompute");
    const bytes = treeBytes(installed);
    const dependencies = treeBytes(join(installed, "node_modules"));
    const packages = readdirSync(join(installed, "node_modules"))
      .filter((name) => !name.startsWith("."))
      .flatMap((name) => (name.startsWith("@") ? readdirSync(join(installed, "node_modules", name)).map((sub) => `${name}/${sub}`) : [name]));
    console.log(
      `crowdcompute ${cliVersion} installs ${(bytes / 1e6).toFixed(1)} MB (limit ${maxInstallBytes / 1e6} MB): its own files ${((bytes - dependencies) / 1e6).toFixed(2)} MB, ${packages.length} packages ${(dependencies / 1e6).toFixed(1)} MB`,
    );
    expect(bytes).toBeLessThan(maxInstallBytes);
    expect(packages).toEqual(expect.arrayContaining(["puppeteer-core", "esbuild", "commander"]));
    // No build or test tooling, and none of the workspace's own packages (they are bundled in).
    for (const tooling of ["typescript", "vitest", "@biomejs/biome", "turbo", "wrangler", "workerd", "vite", "tsx", "@crowdcompute/sdk", "@crowdcompute/contract", "@crowdcompute/sandbox"]) {
      expect(packages).not.toContain(tooling);
    }

    const version = await cli(["--version"], work);
    expect(version).toMatchObject({ code: 0, stdout: `${cliVersion}\n` });
    const help = await cli(["help"], work);
    expect(help.code).toBe(0);
    for (const command of ["volunteer", "login", "submit", "status", "results", "run"]) expect(help.stdout).toContain(`  ${command} `);
    const noBrowser = await cli(["volunteer", "--browser", join(work, "no-chromium")], work);
    expect(noBrowser.code).toBe(2);
    expect(noBrowser.stderr).toContain("no browser at");
  });

  it("volunteers, logs in, submits a project with an npm library, follows its results and dry-runs it", async () => {
    const login = await cli(["login", "--register", "--email", "creator@example.com", "--password-stdin", "--json"], work, { input: "a long password\n" });
    expect(login.code, login.stderr).toBe(0);

    // A creator's own project: the work file imports a local module and an npm library.
    const project = tempDir("project");
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "lcg-project", private: true, type: "module" }));
    const noble = (JSON.parse(readFileSync(join(repoRoot, "node_modules/@noble/hashes/package.json"), "utf8")) as { version: string }).version;
    sh("npm", ["install", "--no-audit", "--no-fund", `@noble/hashes@${noble}`], project);
    cpSync(join(fixtures, "lcg/work.js"), join(project, "work.js"));
    cpSync(join(fixtures, "lcg/lcg.js"), join(project, "lcg.js"));
    const inputs = seeds(8).map((input) => ({ ...input, spinMs: 5 }));
    writeFileSync(join(project, "inputs.json"), JSON.stringify(inputs));
    const expected = inputs.map((input, index) => expectedLcg(index, input.seed));

    // wabt, loaded on first use, compiles `--wasm f.wat` (here it finds the fixture's type error).
    const badWasm = await cli(["submit", "work.js", "--inputs", "inputs.json", "--wasm", join(fixtures, "bad.wat")], project);
    expect(badWasm.code).toBe(2);
    expect(badWasm.stderr).toMatch(/bad\.wat:1:56: error: type mismatch in i32\.add/);
    const submitted = await cli(["submit", "work.js", "--inputs", "inputs.json", "--start", "--json"], project);
    expect(submitted.code, submitted.stderr).toBe(0);
    const taskId = (JSON.parse(submitted.stdout) as { id: string }).id;

    const follow = start(["results", taskId, "--follow", "--quiet"], project);
    const volunteer = start(["volunteer", "--threads", "2", "--json"], project);
    const followed = await follow.done;
    expect(followed.code, followed.stderr).toBe(0);
    const lines = parseJsonLines(followed.stdout) as { index: number; status: string; result: unknown }[];
    expect(lines.sort((a, b) => a.index - b.index).map((line) => line.result)).toEqual(expected);
    const status = await cli(["status", taskId, "--json"], project);
    expect(JSON.parse(status.stdout)).toMatchObject({ status: "done", counts: { done: 8, failed: 0 } });
    const tasks = await cli(["tasks", "--json"], project);
    expect(tasks.code, tasks.stderr).toBe(0);
    expect(tasks.stdout).toContain(taskId);

    // The SDK, while the volunteer still runs: a TypeScript script that type-checks against the
    // packed SDK with only TypeScript beside it, then computes a job on the system's node.
    const key = await cli(["keys", "create", "--name", "sdk", "--email", "creator@example.com", "--password-stdin", "--json"], project, { input: "a long password\n" });
    expect(key.code, key.stderr).toBe(0);
    const apiKey = (JSON.parse(key.stdout) as { key: string }).key;
    const sdkTarball = (JSON.parse(sh("npm", ["pack", join(repoRoot, "packages/sdk/dist"), "--pack-destination", work, "--json"], work)) as { filename: string }[])[0]!.filename;
    const app = tempDir("sdk-app");
    writeFileSync(join(app, "package.json"), "{}\n");
    const typescript = (JSON.parse(readFileSync(join(repoRoot, "node_modules/typescript/package.json"), "utf8")) as { version: string }).version;
    sh("npm", ["install", "--no-audit", "--no-fund", join(work, sdkTarball), `typescript@${typescript}`], app);
    expect(
      readdirSync(join(app, "node_modules"))
        .filter((name) => !name.startsWith("@") && !name.startsWith("."))
        .sort(),
    ).toEqual(["esbuild", "typescript", "zod"]);
    writeFileSync(
      join(app, "job.mts"),
      `import { createClient, type Job, type ResultLine } from "@crowdcompute/sdk/node";
const cc = createClient({ baseUrl: ${JSON.stringify(server.url)}, token: ${JSON.stringify(apiKey)} });
const job: Job = await cc.compute([1, 2, 3, 4], (n: number) => n * n, { name: "squares", timeoutMs: 10_000 });
const results: ResultLine[] = [];
job.on("result", (line) => results.push(line));
const task = await job.done();
console.log(JSON.stringify({ status: task.status, squares: results.sort((a, b) => a.index - b.index).map((r) => (r.status === "done" ? r.result : r.error.message)) }));
export function misuse(): void {
  // @ts-expect-error: a range needs a size
  void cc.compute({ start: 0, end: 10 }, "work.js");
}
`,
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "nodenext", target: "es2022", strict: true, skipLibCheck: false, types: [], outDir: "out" }, files: ["job.mts"] }),
    );
    sh("node", [join(app, "node_modules/typescript/bin/tsc"), "-p", "."], app);
    const sdkRun = JSON.parse(sh("node", ["out/job.mjs"], app)) as unknown;
    expect(sdkRun).toEqual({ status: "done", squares: [1, 4, 9, 16] });

    // The volunteer computed both tasks' chunks (it was the only one), and stops on Ctrl-C.
    const chunksDone = () => (parseJsonLines(volunteer.stdout()) as { event: string; chunksDone?: number }[]).filter((event) => event.event === "progress").at(-1)?.chunksDone ?? 0;
    await until("the volunteer to report 12 chunks done", () => chunksDone() >= 12, 30_000);
    volunteer.child.kill("SIGINT");
    await volunteer.done;

    // The dry run: the same work through the sandbox bundled in the package, no server.
    const ran = await cli(["run", "work.js", "--inputs", "inputs.json", "--limit", "3", "--threads", "1"], project);
    expect(ran.code, ran.stderr).toBe(0);
    expect((parseJsonLines(ran.stdout) as { result: unknown }[]).map((line) => line.result)).toEqual(expected.slice(0, 3));
  }, 240_000);
});
