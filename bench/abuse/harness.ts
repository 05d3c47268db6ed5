// The abuse bench's harness (issue 25): an API process of its own (the bundle `npm start`
// runs, with its flags), a steady stream of normal requests — a creator reading its task
// (GET /api/tasks/:id) and lean volunteers leasing one chunk and reporting it — while one
// attack scenario runs, then the normal requests' p50/p99 and errors, what the attack got
// back, the API process's peak RSS and whether it was still up. Not a bench itself:
// bench/abuse.bench.ts runs the scenarios (bench/abuse/*.scenario.ts) and prints one table.
//
// Every client comes from 127.0.0.1, so the API is started with TRUSTED_PROXIES naming the
// loopbacks and each client sends its own X-Forwarded-For: the normal clients are one
// network source, the attacker another (docs/architecture.md, "Bounds on what one caller
// holds"). A scenario may raise limits by `env`; the bench prints what it set.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import { type ApiProcess, adminUrl, benchMintLimits, databaseName, percentile, sleep, startApiProcess, startEmbeddedApiProcess } from "../api-process.ts";
import { attackerSource, normalSource, type RawRequest, type RawResponse, rawRequest } from "./http.ts";
import { runNormalStream } from "./normal-stream.ts";

export type AbuseBackend = "postgres" | "pglite";

/** JSON calls for set-up (not timed): throws on any status over 399. */
export async function jsonCall(base: string, method: string, path: string, body?: unknown, token?: string, source = attackerSource): Promise<any> {
  const response = await rawRequest(base, { method, path, ...(token ? { token } : {}), source, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (response.status === 0 || response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${response.text.slice(0, 300)}`);
  return response.text ? JSON.parse(response.text) : null;
}

let accounts = 0;

/** A new creator account (from `source`); its session token. */
export async function registerCreator(base: string, name = "creator", source = attackerSource): Promise<string> {
  accounts += 1;
  const { token } = await jsonCall(base, "POST", "/api/auth/register", { email: `${name}-${accounts}-${process.pid}@example.com`, password: "bench password" }, undefined, source);
  return token as string;
}

/** A new anonymous volunteer (from `source`); its token. */
export async function anonymousVolunteer(base: string, source = attackerSource): Promise<string> {
  return (await jsonCall(base, "POST", "/api/volunteers", { name: "bench" }, undefined, source)).token as string;
}

/** Starts a no-op range task of `chunks` chunks; its id. */
export async function startRangeTask(base: string, token: string, chunks: number, options: Record<string, unknown> = {}, source = attackerSource): Promise<string> {
  const task = await jsonCall(
    base,
    "POST",
    "/api/tasks",
    { name: `bench ${chunks}`, code: "export default (x) => x", range: { start: 0, end: chunks, size: 1 }, start: true, ...options },
    token,
    source,
  );
  return task.task.id as string;
}

/** What a scenario gets: the running API, its attacker's helpers, and when to stop. */
export interface AbuseContext {
  base: string;
  pid: number;
  backend: AbuseBackend;
  /** Aborted when the attack's time is up: a scenario's loops end on it. */
  signal: AbortSignal;
  /** How long the attack runs, in ms. */
  durationMs: number;
  /** The normal creator's task (a range task the lean volunteers work through). */
  normalTaskId: string;
  /** Tallies what the attack got back: a status (0 for a cut or failed connection) or any label. A 0 after the attack's end is not counted (the harness's abort). */
  tally(outcome: number | string): void;
  /** The tallies so far. */
  outcomes(): Map<string, number>;
  /** Counts a problem the scenario found (something lost or changed): the row shows them, and the bench fails. */
  problem(text: string): void;
  rawRequest(request: RawRequest): Promise<RawResponse>;
}

export interface AbuseScenario<State = unknown> {
  /** Short, for the table: "heartbeat flood". */
  name: string;
  /** One line: what the attacker does. */
  attack: string;
  /** Environment for the API process beyond the harness's (limits a bench from loopback raises). */
  env?: Record<string, string>;
  /** Set-up before the clock starts (accounts, leases, tasks); its result is passed on. */
  prepare?(ctx: AbuseContext): Promise<State>;
  /** The attack itself: runs until `ctx.signal` is aborted (the harness waits for it to return). */
  run(ctx: AbuseContext, state: State): Promise<void>;
  /** After the attack: checks that nothing was lost or changed (call ctx.problem for each finding). */
  check?(ctx: AbuseContext, state: State): Promise<void>;
}

export interface AbuseRow {
  scenario: string;
  attack: string;
  backend: AbuseBackend;
  seconds: number;
  /** Normal requests answered 2xx, and their latency in ms. */
  normalOk: number;
  p50Ms: number;
  p99Ms: number;
  /** Normal requests that failed (any status over 399, a cut connection, or over 10 s). */
  normalErrors: number;
  normalErrorSample: string | null;
  /** What the attack's requests got back, by status or label, most frequent first. */
  attackOutcomes: [string, number][];
  /** The API process's peak resident memory (VmHWM), in MiB. */
  peakRssMb: number;
  /** Whether the API process still answered GET /api/health after the attack. */
  serverUp: boolean;
  problems: string[];
  env: Record<string, string>;
}

/** The API process's settings in every run: the loopbacks are a trusted proxy (see the top of this file). */
export const harnessEnv: Record<string, string> = {
  TRUSTED_PROXIES: "127.0.0.1,::1",
  // Every lean volunteer and attacker identity comes from a handful of sources.
  ...benchMintLimits,
  REGISTER_LIMIT_PER_IP: "10000",
};

const peakRssMb = (pid: number): number | null => {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return null; // it exited
  }
};

export interface RunOptions {
  backend: AbuseBackend;
  /** How long the attack (and the normal stream beside it) runs. Default 10 s. */
  seconds?: number;
  /** Normal creators reading their task, and lean volunteers leasing + reporting. Default 2 and 2. */
  readers?: number;
  volunteers?: number;
}

/**
 * Runs `scenario` (null: no attack, the baseline) on a fresh API process and database:
 * prepares it, then for `seconds` runs it beside the normal stream, checks, and reports.
 */
export async function runAbuseScenario<State>(scenario: AbuseScenario<State> | null, options: RunOptions): Promise<AbuseRow> {
  const seconds = options.seconds ?? 10;
  const env = { ...harnessEnv, ...scenario?.env };
  let api: ApiProcess;
  let cleanup: () => Promise<void>;
  if (options.backend === "postgres") {
    const url = await createTestDatabase(adminUrl);
    api = await startApiProcess(url, env);
    cleanup = () => dropDatabase(adminUrl, databaseName(url));
  } else {
    const dir = mkdtempSync(join(tmpdir(), "cc-abuse-"));
    api = await startEmbeddedApiProcess(dir, env);
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  let peak = peakRssMb(api.pid) ?? 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, peakRssMb(api.pid) ?? 0);
  }, 100);
  const outcomes = new Map<string, number>();
  const problems: string[] = [];
  const controller = new AbortController();
  try {
    const creator = await registerCreator(api.base, "normal", normalSource);
    const normalTaskId = await startRangeTask(api.base, creator, 1_000_000, {}, normalSource);
    const ctx: AbuseContext = {
      base: api.base,
      pid: api.pid,
      backend: options.backend,
      signal: controller.signal,
      durationMs: seconds * 1000,
      normalTaskId,
      tally: (outcome) => {
        if (outcome === 0 && controller.signal.aborted) return;
        outcomes.set(String(outcome), (outcomes.get(String(outcome)) ?? 0) + 1);
      },
      outcomes: () => outcomes,
      problem: (text) => problems.push(text),
      rawRequest: (request) => rawRequest(api.base, request),
    };
    const state = (scenario?.prepare ? await scenario.prepare(ctx) : undefined) as State;
    const volunteerTokens = await Promise.all(Array.from({ length: options.volunteers ?? 2 }, () => anonymousVolunteer(api.base, normalSource)));

    const started = performance.now();
    // The normal stream runs on a thread of its own, so that the attacker's work on this one
    // (building and sending bodies) does not count in the normal requests' latency.
    const normal = runNormalStream({ base: api.base, creator, taskId: normalTaskId, volunteerTokens, readers: options.readers ?? 2, seconds });
    const attacking = scenario ? scenario.run(ctx, state).catch((error: unknown) => problems.push(`the attack failed: ${(error as Error).message}`)) : Promise.resolve();
    const { latencies, normalErrors, normalErrorSample } = await normal;
    controller.abort();
    await attacking;
    const elapsed = (performance.now() - started) / 1000;
    const health = await rawRequest(api.base, { path: "/api/health", source: normalSource, timeoutMs: 10_000 });
    const serverUp = health.status === 200;
    if (!serverUp) {
      let alive = true;
      try {
        process.kill(api.pid, 0);
      } catch {
        alive = false;
      }
      problems.push(`GET /api/health after the attack: ${health.status} ${health.text.slice(0, 120)} (the process ${alive ? "still runs" : "is gone"})`);
    }
    if (serverUp && scenario?.check) await scenario.check(ctx, state);
    peak = Math.max(peak, peakRssMb(api.pid) ?? 0);
    latencies.sort((a, b) => a - b);
    return {
      scenario: scenario?.name ?? "no attack",
      attack: scenario?.attack ?? "the normal stream alone",
      backend: options.backend,
      seconds: elapsed,
      normalOk: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      normalErrors,
      normalErrorSample,
      attackOutcomes: [...outcomes.entries()].sort((a, b) => b[1] - a[1]),
      peakRssMb: peak,
      serverUp,
      problems,
      env: scenario?.env ?? {},
    };
  } finally {
    controller.abort();
    clearInterval(sampler);
    await api.stop();
    await cleanup();
  }
}

/** `parts` sent `delayMs` apart (until `signal` is aborted): a trickled body for RawRequest.body. */
export async function* trickle(parts: (string | Buffer)[], delayMs: number, signal?: AbortSignal): AsyncGenerator<string | Buffer> {
  for (const part of parts) {
    if (signal?.aborted) return;
    yield part;
    await sleep(delayMs);
  }
}

/** Runs `worker` `concurrency` times at once, each in a loop until `signal` is aborted. */
export async function inLoops(concurrency: number, signal: AbortSignal, worker: (i: number) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (!signal.aborted) await worker(i);
    }),
  );
}

/** The table of rows, as Markdown. */
export function abuseTable(rows: AbuseRow[]): string {
  const lines = ["| attack | database | normal ok | p50 ms | p99 ms | normal errors | attack got | peak RSS MiB | up | problems |", "|---|---|---|---|---|---|---|---|---|---|"];
  for (const r of rows) {
    const got = r.attackOutcomes
      .slice(0, 4)
      .map(([k, n]) => `${k}×${n}`)
      .join(", ");
    lines.push(
      `| ${r.scenario} | ${r.backend} | ${r.normalOk} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.normalErrors} | ${got || "–"} | ${r.peakRssMb.toFixed(0)} | ${r.serverUp ? "yes" : "NO"} | ${r.problems.length === 0 ? "none" : r.problems.join("; ")} |`,
    );
  }
  return lines.join("\n");
}
