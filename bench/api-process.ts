// What the HTTP benches share: the Node API in a process of its own on a bench database,
// JSON clients for it, the dispatch volunteer loop, and figures read from /proc.
// Not a bench itself (run.ts runs only *.bench.ts).

import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { createTestDatabase, dropDatabase, freePort } from "@crowdcompute/db/testing";
import { bundlePath, bundleServer, serverNodeFlags } from "../apps/api/scripts/bundle.ts";
import { spawnServer } from "../apps/api/test/server-process.ts";

export const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const jwtSecret = "bench-secret-bench-secret-bench-secret";
const root = fileURLToPath(new URL("..", import.meta.url));

/** The database a connection URL names. */
export const databaseName = (url: string) => new URL(url).pathname.slice(1);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
export const mean = (xs: readonly number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export interface ApiProcess {
  base: string;
  port: number;
  pid: number;
  /** What the server wrote to stdout and stderr since it started, in characters (a per-request log line would show here). */
  outputBytes(): number;
  stop(): Promise<void>;
}

let bundled: Promise<void> | null = null;

/**
 * Every bench client mints its volunteer from loopback, far past what one network source may
 * (docs/architecture.md, "Minting volunteers"): the API processes of the benches run with these
 * raised, unless the environment says otherwise, and the first one started prints them.
 */
export const benchMintLimits: Record<string, string> = {
  VOLUNTEER_MINT_PER_HOUR: "1000000",
  VOLUNTEER_MINT_PER_DAY: "1000000",
  VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY: "1000000",
};
let mintLimitsPrinted = false;

/**
 * Starts the server `npm start` runs (the bundle apps/api/dist/main.js, built once per bench
 * run) on a free port against `databaseUrl` (it migrates first, under an advisory lock, so
 * several may start at once) and resolves when it serves.
 * BENCH_SERVER_PROFILE=dir writes a V8 CPU profile of each API process there; BENCH_SERVER_LOG=file
 * appends its output there once it stops.
 */
export async function startApiProcess(databaseUrl: string, env: Record<string, string> = {}): Promise<ApiProcess> {
  return spawnApi({ ...process.env, DATABASE_URL: databaseUrl, JWT_SECRET: jwtSecret, ...env });
}

/** As `startApiProcess`, on the embedded database in `dataDir`, as `npm start` runs with no DATABASE_URL. */
export async function startEmbeddedApiProcess(dataDir: string, env: Record<string, string> = {}): Promise<ApiProcess> {
  const inherited: Record<string, string | undefined> = { ...process.env };
  delete inherited.DATABASE_URL;
  delete inherited.JWT_SECRET;
  return spawnApi({ ...inherited, DATA_DIR: dataDir, ...env });
}

async function spawnApi(given: Record<string, string | undefined>): Promise<ApiProcess> {
  const env = { ...benchMintLimits, ...given };
  if (!mintLimitsPrinted) {
    mintLimitsPrinted = true;
    console.error(
      `API processes mint volunteers with raised limits (loopback is one source): ${Object.keys(benchMintLimits)
        .map((k) => `${k}=${env[k]}`)
        .join(" ")}`,
    );
  }
  await (bundled ??= bundleServer());
  const port = await freePort();
  const profile = process.env.BENCH_SERVER_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_SERVER_PROFILE}`] : [];
  // BENCH_NODE_FLAGS="..." tries other V8 flags than `npm start`'s, for a paired comparison.
  const flags = process.env.BENCH_NODE_FLAGS === undefined ? serverNodeFlags : process.env.BENCH_NODE_FLAGS.split(" ").filter(Boolean);
  const { child, output } = await spawnServer([...flags, ...profile, bundlePath], {
    cwd: root,
    env: { ...env, PORT: String(port), SANDBOX_PORT: String(await freePort()) },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    outputBytes: () => output().length,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      if (process.env.BENCH_SERVER_LOG) appendFileSync(process.env.BENCH_SERVER_LOG, output());
    },
  };
}

/** A bench's API: its process, a keep-alive client, and the creator it registered. */
export interface LiveServer {
  server: ApiProcess;
  client: JsonClient;
  /** The creator's bearer token. */
  token: string;
  /** Stops the process and drops its database. */
  close(): Promise<void>;
}

/** The API (`startApiProcess` with `env`) on a fresh database of `adminUrl`'s server, a client of `maxSockets` sockets, and a creator. */
export async function liveServer(env: Record<string, string> = {}, maxSockets = 8): Promise<LiveServer> {
  const url = await createTestDatabase(adminUrl);
  const server = await startApiProcess(url, env);
  const client = keepAliveClient(server.base, maxSockets);
  const { token } = await client.post("/api/auth/register", { email: "live@example.com", password: "bench password" });
  return {
    server,
    client,
    token,
    close: async () => {
      await server.stop();
      await dropDatabase(adminUrl, databaseName(url)).catch(() => {});
    },
  };
}

export interface JsonClient {
  post(path: string, body: unknown, token?: string): Promise<any>;
  get(path: string, token?: string): Promise<any>;
}

class HttpStatusError extends Error {
  constructor(path: string, status: number, body: string) {
    super(`${path}: ${status} ${body.slice(0, 500)}`);
  }
}

/**
 * A client on node:http with a keep-alive agent: fetch costs several times the CPU per
 * request, and the clients share the server's cores. Idle sockets are closed after 2 s: the
 * agent's own margin (1 s before the server's 5 s keep-alive timeout) is lost when a loaded
 * machine delays its timers, and a request sent on a socket the server is closing fails
 * with ECONNRESET, an error of the client, not of the API.
 */
export function keepAliveClient(base: string, maxSockets: number): JsonClient {
  const { hostname, port } = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets, timeout: 2_000 });
  const call = (method: string, path: string, body?: unknown, token?: string) =>
    new Promise<any>((resolve, reject) => {
      const payload = body === undefined ? "" : JSON.stringify(body);
      const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...(token ? { authorization: `Bearer ${token}` } : {}) };
      const request = http.request({ host: hostname, port, path, method, agent, headers }, (response) => {
        const parts: Buffer[] = [];
        response.on("data", (part: Buffer) => parts.push(part));
        response.on("error", reject);
        response.on("end", () => {
          const text = Buffer.concat(parts).toString();
          if ((response.statusCode ?? 500) >= 400) return reject(new HttpStatusError(path, response.statusCode ?? 500, text));
          try {
            resolve(JSON.parse(text));
          } catch (error) {
            reject(error);
          }
        });
      });
      request.on("error", reject);
      request.end(payload);
    });
  return { post: (path, body, token) => call("POST", path, body, token), get: (path, token) => call("GET", path, undefined, token) };
}

/** Registers a creator and starts a no-op range task of `chunks` chunks (with `options`, e.g. replication). */
export async function startRangeTask(client: JsonClient, name: string, chunks: number, options: Record<string, unknown> = {}): Promise<void> {
  const { token } = await client.post("/api/auth/register", { email: `${name}@example.com`, password: "bench password" });
  await client.post("/api/tasks", { name, code: "export default () => 0", range: { start: 0, end: chunks, size: 1 }, start: true, ...options }, token);
}

/** Volunteer identities, made `inParallel` at a time (the per-address limit must allow `count`). */
export async function volunteerTokens(client: JsonClient, count: number, inParallel = 50): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i += inParallel) {
    const batch = Array.from({ length: Math.min(inParallel, count - i) }, async () => (await client.post("/api/volunteers", {})).token as string);
    tokens.push(...(await Promise.all(batch)));
  }
  return tokens;
}

/** A volunteer of 4 threads asking for 4 s of work: blocks sized to each task's mean chunk time. */
const dispatchLease = { bufferMs: 4000, capabilities: { threads: 4 } };

/**
 * The dispatch loop of one volunteer with no compute time: lease, then report every block
 * whole with `next` so the following blocks come back in the same round trip, until no work
 * is left. Returns how many chunks the server accepted.
 */
export async function drainTask(client: JsonClient, token: string, next: unknown = dispatchLease): Promise<number> {
  let accepted = 0;
  let blocks = (await client.post("/api/work/lease", next, token)).leases as { leaseId: string; inputs: unknown[] }[];
  while (blocks.length > 0) {
    const results = blocks.map((block) => ({ leaseId: block.leaseId, results: new Array(block.inputs.length).fill(0), cpuMs: 0 }));
    const out = await client.post("/api/work/results", { results, next }, token);
    accepted += out.accepted as number;
    blocks = out.leases;
  }
  return accepted;
}

/** Resident memory of a process, in MB. */
export const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

const clockTicksPerSecond = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process and all its descendants alive now have used. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  try {
    // The command name may hold spaces; the fields after it are fixed.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    ticks = Number(fields[11]) + Number(fields[12]);
    for (const thread of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${thread}/children`, "utf8").split(" ").filter(Boolean)) {
        ticks += treeCpuSeconds(Number(child)) * clockTicksPerSecond;
      }
    }
  } catch {
    // the process ended meanwhile
  }
  return ticks / clockTicksPerSecond;
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat, and the busy ones in CPU seconds. */
export function machineTimes() {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const values = fields.map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  const total = values.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, busySeconds: (total - idle) / clockTicksPerSecond };
}
