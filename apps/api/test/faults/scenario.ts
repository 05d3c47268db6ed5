// One fault scenario (issue 9): a task computed by real browser volunteers and simulated HTTP
// volunteers while something breaks on purpose, then a count of what was lost or doubled.
// Used at a reduced size by faults.test.ts (part of `npm test`) and at full size by
// bench/faults.bench.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditTask, type TaskAudit } from "@crowdcompute/db/audit";
import { type DisposablePostgres, startDisposablePostgres } from "@crowdcompute/db/disposable-postgres";
import { createPgliteDb } from "@crowdcompute/db/pglite";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { type Backend, createTestDatabase, dropDatabase, freePortPair } from "@crowdcompute/db/testing";
import { type ApiProcess, type BrowserVolunteer, killProcess, sleep, startApi, startBalancer, startBrowserVolunteer } from "./processes.ts";
import { type SimulatedVolunteer, startSimulatedVolunteer } from "./simulated-volunteer.ts";
import { reference, spinMs, workCode } from "./work.ts";

export type Fault =
  /** Half of the browser and half of the simulated volunteers die holding leases. */
  | "volunteers"
  /** The API process is killed (SIGKILL) and started again on the same port. */
  | "api-restart"
  /** The Postgres server (a private cluster) stops `-m immediate` and starts again. */
  | "postgres-restart"
  /** Two API processes behind a balancer; one is killed for good. */
  | "api-failover";

export interface ScenarioOptions {
  fault: Fault;
  backend: Backend;
  chunks: number;
  browsers: number;
  simulated: number;
  /** The Postgres server where per-run databases are made (backend `postgres`, and `api-failover`). */
  adminUrl: string;
  /** How long the task may take after the fault. */
  finishWithinMs?: number;
}

export interface ScenarioReport {
  fault: Fault;
  backend: Backend;
  chunks: number;
  browsers: number;
  simulated: number;
  volunteersKilled: number;
  /** Chunks done when the fault struck. */
  doneAtFault: number;
  seconds: number;
  status: string;
  counts: Record<string, number>;
  /** Result lines: missing indexes, indexes served twice, results that differ from the reference. */
  missing: number;
  duplicated: number;
  wrong: number;
  /** Chunks browsers computed (as their pages counted them; a killed page's count is lost with it). */
  browserChunks: number;
  /** 5xx answers the simulated volunteers saw, other than 503 (a bug: must be 0). */
  serverErrors: number;
  /** 503 answers they saw: a server starting, or its database down. */
  unavailable: number;
  audit: TaskAudit;
  /** Everything inconsistent, in words; empty when nothing was lost or counted twice. */
  problems: string[];
}

const jwtSecret = "fault-suite-secret-fault-suite-secret";

async function call(base: string, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw Object.assign(new Error(`${method} ${path}: ${response.status} ${text}`), { status: response.status });
  return /application\/(problem\+)?json/.test(response.headers.get("content-type") ?? "") ? JSON.parse(text) : text;
}

export async function runFaultScenario(options: ScenarioOptions): Promise<ScenarioReport> {
  const { fault, backend, chunks } = options;
  const cleanups: (() => Promise<void> | void)[] = [];
  const apis: ApiProcess[] = [];
  const browsers: BrowserVolunteer[] = [];
  const simulated: SimulatedVolunteer[] = [];
  try {
    // The database: an embedded one, a database on the shared server, or a private server.
    let env: Record<string, string>;
    let auditDb: () => Promise<{ db: Parameters<typeof auditTask>[0]; close(): Promise<void> }>;
    let privateServer: DisposablePostgres | null = null;
    if (fault === "postgres-restart") {
      if (backend !== "postgres") throw new Error("postgres-restart needs the postgres backend");
      privateServer = await startDisposablePostgres();
      const server = privateServer;
      cleanups.push(() => server.destroy());
      env = { DATABASE_URL: server.url, JWT_SECRET: jwtSecret };
      auditDb = async () => createPostgresDb(server.url, { max: 1 });
    } else if (backend === "postgres") {
      const url = await createTestDatabase(options.adminUrl);
      cleanups.push(() => dropDatabase(options.adminUrl, new URL(url).pathname.slice(1)));
      env = { DATABASE_URL: url, JWT_SECRET: jwtSecret };
      auditDb = async () => createPostgresDb(url, { max: 1 });
    } else {
      if (fault === "api-failover") throw new Error("api-failover needs the postgres backend: PGlite serves one process");
      const dataDir = mkdtempSync(join(tmpdir(), "cc-faults-"));
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      // Empty means unset: the embedded database under DATA_DIR.
      env = { DATABASE_URL: "", JWT_SECRET: "", DATA_DIR: dataDir };
      auditDb = () => createPgliteDb(join(dataDir, "pglite"));
    }
    const killAll = async () => {
      await Promise.all([...apis.map((api) => killProcess(api.child)), ...browsers.map((b) => killProcess(b.child))]);
    };
    cleanups.unshift(killAll);

    // The API: one process, or two behind a balancer that all volunteers use.
    let base: string;
    let alive: ApiProcess[];
    if (fault === "api-failover") {
      const port = await freePortPair();
      const publicEnv = { ...env, PUBLIC_URL: `http://localhost:${port}`, SANDBOX_ORIGIN: `http://127.0.0.1:${port + 1}` };
      apis.push(await startApi(publicEnv, await freePortPair()), await startApi(publicEnv, await freePortPair()));
      alive = [...apis];
      const balancer = await startBalancer(port, () => alive.map((api) => api.port));
      cleanups.unshift(() => balancer.close());
      base = `http://localhost:${port}`;
    } else {
      apis.push(await startApi(env, await freePortPair()));
      alive = [...apis];
      base = apis[0]!.base;
    }

    const { token } = await call(base, "POST", "/api/auth/register", { email: "faults@example.com", password: "a long password" });
    const inputs = Array.from({ length: chunks }, (_, i) => i);
    // Created stopped: a page that starts first would otherwise lease (4 s blocks) and finish
    // the whole task before a slower one had loaded.
    const { task } = await call(base, "POST", "/api/tasks", { name: `faults: ${fault}`, code: workCode, inputs, timeoutMs: 2000, start: false }, token);

    const progress = async () => (await call(base, "GET", `/api/tasks/${task.id}`, undefined, token).catch(() => null))?.task ?? null;
    const waitFor = async (what: string, ready: () => Promise<boolean> | boolean) => {
      const deadline = Date.now() + 120_000;
      while (!(await ready())) {
        // A page that died before the fault (no Chromium, a crash) never computes: say so now.
        const exited = browsers.find((b) => b.child.exitCode !== null && !b.child.killed);
        if (exited) throw new Error(`a browser volunteer exited (${exited.child.exitCode}) waiting for ${what}: ${exited.output()}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; browsers: ${browsers.map((b) => b.output()).join("\n")}`);
        await sleep(100);
      }
    };
    // Browsers take seconds to start: the simulated volunteers join once every page computes.
    for (let i = 0; i < options.browsers; i++) browsers.push(startBrowserVolunteer(base));
    await waitFor("every browser to ask for work", () => browsers.every((b) => b.hasWaited()));
    await call(base, "POST", `/api/tasks/${task.id}/start`, undefined, token);
    const startedAt = Date.now();
    await waitFor("every browser to compute", () => browsers.every((b) => b.chunksDone() > 0));
    for (let i = 0; i < options.simulated; i++) simulated.push(startSimulatedVolunteer(base, { msPerChunk: spinMs * 2 }));
    const stopSimulated = async () => void (await Promise.all(simulated.map((v) => v.stop())));
    cleanups.unshift(stopSimulated);

    // Strike once a third is done, while every volunteer holds work.
    let doneAtFault = 0;
    await waitFor("a third of the chunks", async () => (doneAtFault = (await progress())?.counts.done ?? doneAtFault) >= chunks / 3);
    if (doneAtFault >= chunks) throw new Error("the task finished before the fault: make it bigger");

    let volunteersKilled = 0;
    if (fault === "volunteers") {
      const doomedBrowsers = browsers.slice(0, Math.ceil(browsers.length / 2));
      const doomedSimulated = simulated.slice(0, Math.ceil(simulated.length / 2));
      await Promise.all([...doomedBrowsers.map((b) => killProcess(b.child)), ...doomedSimulated.map((v) => v.kill())]);
      volunteersKilled = doomedBrowsers.length + doomedSimulated.length;
    } else if (fault === "api-restart") {
      const [api] = apis;
      await killProcess(api!.child);
      await sleep(300);
      apis.push(await startApi(env, api!.port));
    } else if (fault === "postgres-restart") {
      privateServer!.stop("immediate");
      await sleep(500);
      privateServer!.start();
    } else {
      await killProcess(apis[0]!.child);
      alive = [apis[1]!];
    }

    let view: any = null;
    const deadline = Date.now() + (options.finishWithinMs ?? 120_000);
    while (Date.now() < deadline && (view = (await progress()) ?? view)?.status !== "done") await sleep(200);
    const seconds = (Date.now() - startedAt) / 1000;
    await stopSimulated();
    const browserChunks = browsers.reduce((sum, b) => sum + b.chunksDone(), 0);
    const serverErrors = simulated.reduce((sum, v) => sum + v.serverErrors(), 0);
    const unavailable = simulated.reduce((sum, v) => sum + v.unavailable(), 0);

    const text: string = await call(base, "GET", `/api/tasks/${task.id}/results`, undefined, token);
    const lines = text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { index: number; status: string; result?: number });
    const seen = new Set<number>();
    let duplicated = 0;
    let wrong = 0;
    for (const line of lines) {
      if (seen.has(line.index)) duplicated++;
      seen.add(line.index);
      if (line.status !== "done" || line.result !== reference(line.index)) wrong++;
    }
    const missing = inputs.filter((i) => !seen.has(i)).length;

    // Count the rows themselves: an embedded database can be opened only once its server stopped.
    await killAll();
    const { db, close } = await auditDb();
    const audit = await auditTask(db, task.id).finally(close);

    const problems: string[] = [];
    const check = (ok: boolean, what: string) => ok || problems.push(what);
    check(view?.status === "done", `task status ${view?.status}, not done`);
    check(missing === 0, `${missing} chunks missing from the results`);
    check(duplicated === 0, `${duplicated} chunks served twice`);
    check(wrong === 0, `${wrong} results differ from the reference`);
    const counts = view?.counts ?? {};
    check(counts.done === chunks && counts.pending === 0 && counts.leased === 0 && counts.failed === 0, `counts ${JSON.stringify(counts)}`);
    check(audit.resultChunks === chunks && audit.outOfRange === 0, `${audit.resultChunks} chunks in result rows (${audit.outOfRange} rows out of range)`);
    check(audit.overlaps === 0, `${audit.overlaps} result rows overlap another`);
    check(audit.counters.done === audit.resultChunks && audit.counters.failed === audit.failedChunks, `task counters ${JSON.stringify(audit.counters)} vs ${audit.resultChunks} chunks in rows`);
    check(audit.openChunks === 0, `${audit.openChunks} chunk states left open`);
    check(audit.volunteers.done === audit.resultChunks, `volunteers counted ${audit.volunteers.done} chunks for ${audit.resultChunks} results`);
    check(serverErrors === 0, `${serverErrors} server errors other than 503`);
    check(audit.volunteers.credit === audit.counters.credit, `volunteers' credit ${audit.volunteers.credit} ms, task's ${audit.counters.credit} ms`);
    return {
      fault,
      backend,
      chunks,
      browsers: options.browsers,
      simulated: options.simulated,
      volunteersKilled,
      doneAtFault,
      seconds,
      status: view?.status ?? "unknown",
      counts,
      missing,
      duplicated,
      wrong,
      browserChunks,
      serverErrors,
      unavailable,
      audit,
      problems,
    };
  } finally {
    for (const cleanup of cleanups) await Promise.resolve(cleanup()).catch(() => {});
  }
}
