// The moving parts a fault scenario starts, breaks and restarts: API processes (the real
// `node src/main.ts`), a TCP balancer in front of several of them, and browser volunteers
// (the real `crowdcompute volunteer`, one headless Chromium each).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnServer } from "../server-process.ts";

const apiRoot = fileURLToPath(new URL("../..", import.meta.url));
const cliBin = fileURLToPath(new URL("../../../cli/bin/crowdcompute.js", import.meta.url));

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ApiProcess {
  port: number;
  base: string;
  child: ChildProcess;
  output(): string;
}

/** Starts `node src/main.ts` with `env` on `port` (sandbox on `port + 1`) and waits until it serves. */
export async function startApi(env: Record<string, string>, port: number): Promise<ApiProcess> {
  // The simulated volunteers all mint from loopback: the minting limits raised (docs/architecture.md, "Minting volunteers").
  const mint = { VOLUNTEER_MINT_PER_HOUR: "100000", VOLUNTEER_MINT_PER_DAY: "100000", VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY: "100000" };
  const fullEnv = { ...process.env, LEASE_GRACE_MS: "500", IDLE_RETRY_MS: "200", ...mint, ...env, PORT: String(port), SANDBOX_PORT: String(port + 1) };
  const { child, output } = await spawnServer(["src/main.ts"], { cwd: apiRoot, env: fullEnv });
  return { port, base: `http://localhost:${port}`, child, output };
}

/** Kills a process with SIGKILL (no chance to tidy up) and waits for it to be gone. */
export async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/**
 * A TCP balancer on `port` and `port + 1` (site and sandbox) in front of the API processes
 * `backends()` names: each connection goes to the next backend that accepts it, as a load
 * balancer with health checks would. Connections to a killed backend just break.
 */
export async function startBalancer(port: number, backends: () => number[]): Promise<{ close(): Promise<void> }> {
  let turn = 0;
  const sockets = new Set<Socket>();
  const listen = (offset: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer((client) => {
        sockets.add(client);
        client.once("close", () => sockets.delete(client));
        client.pause();
        const tryBackend = (triesLeft: number) => {
          const ports = backends();
          const target = ports[turn++ % Math.max(1, ports.length)];
          if (target === undefined || triesLeft === 0) return client.destroy();
          const upstream = createConnection({ host: "127.0.0.1", port: target + offset });
          upstream.once("error", () => (upstream.bytesWritten === 0 && !client.destroyed ? tryBackend(triesLeft - 1) : client.destroy()));
          upstream.once("connect", () => {
            sockets.add(upstream);
            upstream.once("close", () => sockets.delete(upstream));
            client.pipe(upstream).on("error", () => {});
            upstream.pipe(client).on("error", () => {});
            upstream.once("close", () => client.destroy());
            client.once("close", () => upstream.destroy());
            client.resume();
          });
        };
        client.on("error", () => {});
        tryBackend(backends().length * 2);
      });
      server.once("error", reject);
      server.listen(port + offset, "127.0.0.1", () => resolve(server));
    });
  const servers = [await listen(0), await listen(1)];
  return {
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}

export interface BrowserVolunteer {
  child: ChildProcess;
  chunksDone(): number;
  /** Whether the page has asked for work at least once and been told there was none. */
  hasWaited(): boolean;
  output(): string;
}

/**
 * `crowdcompute volunteer --threads 1 --json` on `server`: one real headless Chromium on the volunteer page, a
 * fresh volunteer each (its own config folder, so the CLI's kept identity never leaks between runs or into ~/.config).
 */
export function startBrowserVolunteer(server: string): BrowserVolunteer {
  const env = { ...process.env, XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), "cc-fault-volunteer-")) };
  const child = spawn(process.execPath, [cliBin, "volunteer", "--server", server, "--threads", "1", "--json"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let done = 0;
  let waited = false;
  let pending = "";
  child.stdout!.on("data", (data: Buffer) => {
    output += data.toString();
    pending += data.toString();
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      try {
        const event = JSON.parse(line) as { event?: string; chunksDone?: number; states?: string[] };
        if (event.event === "progress" && typeof event.chunksDone === "number") done = event.chunksDone;
        if (event.event === "progress" && event.states?.includes("waiting")) waited = true;
      } catch {
        // not an event line
      }
    }
  });
  child.stderr!.on("data", (data: Buffer) => (output += data.toString()));
  return { child, chunksDone: () => done, hasWaited: () => waited, output: () => output };
}
