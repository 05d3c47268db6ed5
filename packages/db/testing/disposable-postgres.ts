// Node-only test support: a throwaway Postgres server of our own, so a test can really stop
// and restart a database without touching the shared one. Needs the server binaries
// (Debian: postgresql) and, as root, the `postgres` system user to run them.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DisposablePostgres {
  url: string;
  start(): void;
  /** `immediate` is a crash-like stop: no checkpoint, clients cut off. */
  stop(mode?: "fast" | "immediate"): void;
  destroy(): void;
}

function serverBinDir(): string {
  const fromConfig = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  const candidates = [fromConfig.stdout?.trim(), ...listVersions().map((v) => `/usr/lib/postgresql/${v}/bin`)];
  const found = candidates.find((dir) => dir && existsSync(join(dir, "pg_ctl")) && existsSync(join(dir, "initdb")));
  if (!found) throw new Error("Postgres server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql");
  return found;
}

function listVersions(): string[] {
  try {
    return readdirSync("/usr/lib/postgresql").sort().reverse();
  } catch {
    return [];
  }
}

/** A free TCP port on 127.0.0.1 (for servers that must be told their port before they start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Two consecutive free ports: a server's and its sandbox's (`PORT + 1`; docs/architecture.md, "The sandbox"). */
export async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 65535 && (await portIsFree(port + 1))) return port;
  }
}

/** Creates and starts a fresh cluster on a free port, trust auth, database `postgres`. */
export async function startDisposablePostgres(): Promise<DisposablePostgres> {
  const bin = serverBinDir();
  const dir = mkdtempSync(join(tmpdir(), "cc-pg-"));
  chmodSync(dir, 0o777);
  const dataDir = join(dir, "data");
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const run = (tool: string, args: string[]) => {
    const command = asRoot ? "runuser" : join(bin, tool);
    const argv = asRoot ? ["-u", "postgres", "--", join(bin, tool), ...args] : args;
    execFileSync(command, argv, { stdio: "pipe", cwd: dir });
  };
  run("initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const ctl = (args: string[]) => run("pg_ctl", ["-D", dataDir, "-w", "-l", join(dir, "log"), ...args]);
  const start = () => ctl(["-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop: (mode = "fast") => ctl(["-m", mode, "stop"]),
    destroy: () => {
      try {
        ctl(["-m", "immediate", "stop"]);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
