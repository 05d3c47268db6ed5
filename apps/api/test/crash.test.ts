// Nothing is lost when a process dies. Simulated volunteers (keeping every report until the
// server took it, as the page does) compute a task while something breaks: the API process
// killed with SIGKILL and started again, the Postgres server restarted, or one of two API
// processes sharing a database killed for good. Every chunk must end done exactly once, with
// the right result.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDisposablePostgres } from "@crowdcompute/db/disposable-postgres";
import { createTestDatabase, dropDatabase, freePort, testBackends } from "@crowdcompute/db/testing";
import { describe, expect, it } from "vitest";

const apiRoot = fileURLToPath(new URL("..", import.meta.url));
const chunkCount = 1500;
const expected = (n: number) => (n * 7919) % 10007;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const jwtSecret = "crash-test-secret-crash-test-secret-0";

interface Api {
  base: string;
  process: ChildProcess;
}

async function startApi(env: Record<string, string>, port?: number): Promise<Api> {
  const apiPort = port ?? (await freePort());
  const fullEnv = { ...process.env, ...env, PORT: String(apiPort), SANDBOX_PORT: String(await freePort()), LEASE_GRACE_MS: "500", IDLE_RETRY_MS: "200" };
  const child = await new Promise<ChildProcess>((resolve, reject) => {
    const spawned = spawn(process.execPath, ["src/main.ts"], { cwd: apiRoot, env: fullEnv, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes("running at")) resolve(spawned);
    };
    spawned.stdout!.on("data", onData);
    spawned.stderr!.on("data", onData);
    spawned.once("exit", (code) => reject(new Error(`API exited with ${code}: ${output}`)));
  });
  return { base: `http://127.0.0.1:${apiPort}`, process: child };
}

async function kill(api: Api): Promise<void> {
  if (api.process.exitCode !== null || api.process.signalCode !== null) return;
  const exited = new Promise((resolve) => api.process.once("exit", resolve));
  api.process.kill("SIGKILL");
  await exited;
}

async function call(base: string, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw Object.assign(new Error(`${path}: ${response.status} ${text}`), { status: response.status });
  return /application\/(problem\+)?json/.test(response.headers.get("content-type") ?? "") ? JSON.parse(text) : text;
}

/**
 * Runs a task on 4 simulated volunteers spread over `bases()` (each switches to another base
 * when its own stops answering), calls `fault` once a third of the chunks are done, and checks
 * the outcome. Returns how many 5xx answers the volunteers saw.
 */
async function computeThrough(bases: () => string[], fault: () => Promise<void>): Promise<{ serverErrors: number }> {
  const base = () => bases()[0]!;
  const { token } = await call(base(), "POST", "/api/auth/register", { email: "crash@example.com", password: "a long password" });
  const inputs = Array.from({ length: chunkCount }, (_, i) => i);
  const { task } = await call(base(), "POST", "/api/tasks", { name: "crash", code: "export default (n) => (n * 7919) % 10007", inputs, timeoutMs: 500, start: true }, token);

  let serverErrors = 0;
  let finished = false;
  const volunteer = async (which: number) => {
    let vt: string | null = null;
    let reports: { leaseId: string; result: number; cpuMs: number }[] = [];
    let attempt = which;
    while (!finished) {
      const all = bases();
      const at = all[attempt % all.length]!;
      try {
        vt ??= (await call(at, "POST", "/api/volunteers", {})).token as string;
        const next = { max: 16, capabilities: { threads: 4 } };
        const out = reports.length > 0 ? await call(at, "POST", "/api/work/results", { results: reports, next }, vt!) : await call(at, "POST", "/api/work/lease", next, vt!);
        reports = [];
        const leases = out.leases as { leaseId: string; input: number }[];
        if (leases.length === 0) await sleep(out.retryAfterMs ?? 200);
        reports = leases.map((l) => ({ leaseId: l.leaseId, result: expected(l.input), cpuMs: 1 }));
      } catch (error) {
        const status = (error as { status?: number }).status;
        if (status && status >= 500) serverErrors++;
        attempt++;
        await sleep(100);
      }
    }
  };
  const volunteers = Array.from({ length: 4 }, (_, i) => volunteer(i));
  const progress = async () => {
    for (const at of bases()) {
      const view = await call(at, "GET", `/api/tasks/${task.id}`, undefined, token).catch(() => null);
      if (view) return view.task;
    }
    return null;
  };
  try {
    let doneAtFault = 0;
    while ((doneAtFault = (await progress())?.counts.done ?? 0) < chunkCount / 3) await sleep(50);
    await fault();
    let view: any = null;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && (view = await progress())?.status !== "done") await sleep(100);

    expect(doneAtFault).toBeLessThan(chunkCount);
    expect(view?.status).toBe("done");
    expect(view.counts).toEqual({ total: chunkCount, pending: 0, leased: 0, done: chunkCount, failed: 0 });
    const text: string = await call(base(), "GET", `/api/tasks/${task.id}/results`, undefined, token);
    const lines = text.trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.map((line) => line.index)).toEqual(inputs);
    expect(lines.every((line) => line.status === "done" && line.result === expected(line.input))).toBe(true);
  } finally {
    finished = true;
    await Promise.all(volunteers);
  }
  return { serverErrors };
}

describe.each(testBackends())("the API process killed mid-task (%s)", (backend) => {
  it("loses nothing and counts nothing twice", { timeout: 120_000 }, async () => {
    let env: Record<string, string>;
    let databaseUrl: string | null = null;
    if (backend === "postgres") {
      databaseUrl = await createTestDatabase(process.env.DATABASE_URL!);
      env = { DATABASE_URL: databaseUrl, JWT_SECRET: jwtSecret };
    } else {
      // Empty means unset: the embedded database under DATA_DIR.
      env = { DATABASE_URL: "", JWT_SECRET: "", DATA_DIR: mkdtempSync(join(tmpdir(), "cc-crash-")) };
    }
    let api = await startApi(env);
    const port = Number(new URL(api.base).port);
    try {
      const { serverErrors } = await computeThrough(
        () => [api.base],
        async () => {
          await kill(api);
          await sleep(300);
          api = await startApi(env, port);
        },
      );
      expect(serverErrors).toBe(0);
    } finally {
      await kill(api);
      if (databaseUrl) await dropDatabase(process.env.DATABASE_URL!, new URL(databaseUrl).pathname.slice(1));
    }
  });
});

describe("faults of the Postgres server and of one of two API processes", () => {
  it("loses nothing when Postgres restarts mid-task", { timeout: 120_000 }, async () => {
    const server = await startDisposablePostgres();
    const api = await startApi({ DATABASE_URL: server.url, JWT_SECRET: jwtSecret });
    try {
      await computeThrough(
        () => [api.base],
        async () => {
          server.stop("immediate");
          await sleep(500);
          server.start();
        },
      );
    } finally {
      await kill(api);
      server.destroy();
    }
  });

  it("loses nothing when one of two API processes on one Postgres dies for good", { timeout: 120_000 }, async () => {
    const databaseUrl = await createTestDatabase(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test");
    const env = { DATABASE_URL: databaseUrl, JWT_SECRET: jwtSecret };
    const [first, second] = [await startApi(env), await startApi(env)];
    let alive = [first, second];
    try {
      const { serverErrors } = await computeThrough(
        () => alive.map((api) => api.base),
        async () => {
          await kill(first);
          alive = [second];
        },
      );
      expect(serverErrors).toBe(0);
    } finally {
      await Promise.all([kill(first), kill(second)]);
      await dropDatabase(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test", new URL(databaseUrl).pathname.slice(1));
    }
  });
});
