// Runs the Workers entry under `wrangler dev` (workerd, locally, offline) against a Postgres
// server: for `npm run dev:workers` and for the test suite. Node only.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const apiRoot = fileURLToPath(new URL("../..", import.meta.url));
const wranglerBin = fileURLToPath(new URL("../../../../node_modules/wrangler/bin/wrangler.js", import.meta.url));

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface WranglerDev {
  url: string;
  child: ChildProcess;
  /** The last 20 kB wrangler printed (when started with `stdio: "pipe"`). */
  output(): string;
  /** Kills wrangler's whole process group (wrangler, esbuild, workerd) and waits for it. */
  stop(): Promise<void>;
}

const wranglerEnv = () => ({ ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_LOG_PATH: `${apiRoot}/.wrangler/logs` });

/**
 * Bundles the Worker once into `outdir` (`wrangler deploy --dry-run`, offline) and returns
 * the bundle's path: `wrangler dev --no-bundle` on it serves a snapshot that edits to the
 * sources cannot reload halfway through a test run.
 */
export function bundleWorker(outdir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin, "deploy", "--dry-run", "--outdir", outdir], {
      cwd: apiRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: wranglerEnv(),
    });
    let output = "";
    child.stdout.on("data", (data: Buffer) => (output += data.toString()));
    child.stderr.on("data", (data: Buffer) => (output += data.toString()));
    child.once("exit", (code) => (code === 0 ? resolve(`${outdir}/worker.js`) : reject(new Error(`bundling the Worker failed:\n${output}`))));
  });
}

/**
 * Starts `wrangler dev` on `port` with `vars` passed as `--var` (secrets never touch a
 * file), in its own process group, and resolves once it answers HTTP. With `script` (from
 * `bundleWorker`), serves that bundle as it is.
 */
export async function startWranglerDev(options: {
  port: number;
  vars: Record<string, string>;
  script?: string;
  persistTo?: string;
  stdio?: "inherit" | "pipe";
  readyTimeoutMs?: number;
}): Promise<WranglerDev> {
  const inspectorPort = await freePort();
  const args = [
    wranglerBin,
    "dev",
    // Given a script of its own, wrangler dev leaves wrangler.toml's [assets] out: name them.
    ...(options.script ? ["--no-bundle", options.script, "--assets", `${apiRoot}/dist/workers-assets`] : []),
    "--port",
    String(options.port),
    "--ip",
    "127.0.0.1",
    "--inspector-port",
    String(inspectorPort),
    "--local",
    "--show-interactive-dev-session=false",
    "--log-level",
    "warn",
    ...(options.persistTo ? ["--persist-to", options.persistTo] : []),
    ...Object.entries(options.vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: apiRoot,
    detached: true, // its own process group, so stop() reaches workerd too
    stdio: options.stdio === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"],
    env: wranglerEnv(),
  });
  let output = "";
  child.stdout?.on("data", (data: Buffer) => (output = (output + data.toString()).slice(-20_000)));
  child.stderr?.on("data", (data: Buffer) => (output = (output + data.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // the group is gone
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      // wrangler first, so that it stops and reaps workerd; then the whole group, whatever is left.
      child.kill("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    signalGroup("SIGKILL");
  };

  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${url}/api/health`);
      await response.body?.cancel();
      return { url, child, stop, output: () => output };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer within the timeout:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
