// Test support: the real server as a user runs it (`node apps/api/src/main.ts`), and the
// real `crowdcompute` bin, both as child processes.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const bin = fileURLToPath(new URL("../bin/crowdcompute.js", import.meta.url));
export const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

const madeDirs: string[] = [];

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cc-cli-${prefix}-`));
  madeDirs.push(dir);
  return dir;
}

/** Deletes what `tempDir` made (and any other paths given): call in afterAll. */
export function removeTempDirs(...others: string[]): void {
  for (const dir of [...madeDirs.splice(0), ...others]) rmSync(dir, { recursive: true, force: true });
}

export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export { freePortPair } from "@crowdcompute/db/testing";

export interface ServerProcess {
  url: string;
  port: number;
  dataDir: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then wait for the exit (the data dir lock is released). */
  stop(): Promise<void>;
}

/** `node apps/api/src/main.ts` on `port` with embedded PGlite in `dataDir`. */
export async function startServerProcess({ port, dataDir }: { port: number; dataDir: string }): Promise<ServerProcess> {
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(port), DATA_DIR: dataDir, LEASE_GRACE_MS: "1500", IDLE_RETRY_MS: "300" };
  // The suite's volunteers all come from loopback: the minting limits raised (docs/architecture.md, "Minting volunteers").
  env.VOLUNTEER_MINT_PER_HOUR = "100000";
  env.VOLUNTEER_MINT_PER_DAY = "100000";
  env.VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY = "100000";
  delete env.DATABASE_URL;
  delete env.JWT_SECRET;
  delete env.SANDBOX_PORT;
  delete env.SANDBOX_ORIGIN;
  delete env.PUBLIC_URL;
  const child = spawn(process.execPath, [join(repoRoot, "apps/api/src/main.ts")], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (data) => (output += String(data)));
  child.stderr!.on("data", (data) => (output += String(data)));
  const url = `http://localhost:${port}`;
  await until(
    `the server on ${port} (output so far: ${output})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${output}`);
      return output.includes("CrowdCompute is running at");
    },
    90_000,
  );
  return {
    url,
    port,
    dataDir,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `crowdcompute …args` to completion. */
export function runCli(args: string[], { env = {}, input, timeoutMs = 120_000 }: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (data) => (stdout += String(data)));
    child.stderr!.on("data", (data) => (stderr += String(data)));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`crowdcompute ${args.join(" ")} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(input ?? "");
  });
}

/** Starts `crowdcompute …args` (stdio piped, so output is plain lines, never a TTY's). */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const childEnv: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", ...env };
  delete childEnv.FORCE_COLOR;
  return spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
}

/**
 * The environment of a user's own shell: PATH without the `node_modules/.bin` directories npm
 * and npx put first (where the project's Node 24 is), so `node` is whatever the machine has
 * (here Node 20), as for a command typed from the README.
 */
export function userShellEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const path = (process.env.PATH ?? "")
    .split(":")
    .filter((dir) => dir && !dir.includes("node_modules"))
    .join(":");
  return { ...process.env, PATH: path, NO_COLOR: "1", ...extra };
}

/** True while `pid` is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The fixture work function, computed here independently of the browser and the bundle. */
export function expectedLcg(index: number, seed: number) {
  let x = seed >>> 0;
  for (let i = 0; i < 1500; i++) x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  return { index, value: x, digest: createHash("sha256").update(String(x)).digest("hex") };
}

export const seeds = (n: number) => Array.from({ length: n }, (_, i) => ({ seed: (i * 2654435761) >>> 0 }));

export function parseJsonLines(text: string): unknown[] {
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as unknown);
}
