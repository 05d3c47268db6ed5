// Waiting lease requests (`waitMs`) through real API processes (docs/architecture.md,
// "Dispatch", waiting volunteers): a request waiting on one process is answered when a task
// starts through another (NOTIFY on Postgres), and a shutdown answers waiting requests at once.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestDatabase, dropDatabase, freePort, testBackends } from "@crowdcompute/db/testing";
import { afterEach, describe, expect, it } from "vitest";
import { callJson, spawnServer } from "./server-process.ts";

const apiRoot = fileURLToPath(new URL("..", import.meta.url));
const secret = "wait-test-secret-wait-test-secret-0123";

interface Api {
  base: string;
  process: ChildProcess;
  exited: Promise<number | null>;
}

async function startApi(env: Record<string, string>): Promise<Api> {
  const port = await freePort();
  const fullEnv = { ...process.env, VOLUNTEER_MINT_PER_HOUR: "1000", VOLUNTEER_MINT_PER_DAY: "1000", ...env, PORT: String(port), SANDBOX_PORT: String(await freePort()) };
  const { child } = await spawnServer(["src/main.ts"], { cwd: apiRoot, env: fullEnv });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { base: `http://127.0.0.1:${port}`, process: child, exited };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(env: Record<string, string>): Promise<Api> {
  const api = await startApi(env);
  cleanups.push(async () => {
    if (api.process.exitCode === null && api.process.signalCode === null) api.process.kill("SIGKILL");
    await api.exited;
  });
  return api;
}

const waitMsBody = { max: 4, waitMs: 25_000 };

describe.runIf(testBackends().includes("postgres"))("waiting lease requests across API processes (postgres)", () => {
  it("answers a request waiting on one process when a task starts through another", async () => {
    const adminUrl = process.env.DATABASE_URL!;
    const url = await createTestDatabase(adminUrl);
    cleanups.push(() => dropDatabase(adminUrl, new URL(url).pathname.slice(1)));
    const env = { DATABASE_URL: url, JWT_SECRET: secret };
    const a = await started(env);
    const b = await started(env);
    const { token: creator } = await callJson(b, "POST", "/api/auth/register", { email: "two@example.com", password: "a long password" });
    const { token } = await callJson(a, "POST", "/api/volunteers", { name: "waiter" });
    let answered = false;
    const waiting = callJson(a, "POST", "/api/work/lease", waitMsBody, token).finally(() => {
      answered = true;
    });
    // Not answered while there is no work (it would say so at once without waitMs)…
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    // …and answered once process b starts a task: the NOTIFY reaches process a.
    const { task } = await callJson(b, "POST", "/api/tasks", { name: "two", code: "export default (x) => x", inputs: [1], start: true }, creator);
    const answer = await waiting;
    expect(answer.leases.map((l: { taskId: string }) => l.taskId)).toEqual([task.id]);
  });
});

/** A database of `backend` for one API process: a fresh Postgres database, or an embedded one in a new folder. */
async function backendEnv(backend: string): Promise<Record<string, string>> {
  if (backend !== "postgres") return { DATABASE_URL: "", JWT_SECRET: "", DATA_DIR: mkdtempSync(join(tmpdir(), "cc-wait-")) };
  const adminUrl = process.env.DATABASE_URL!;
  const url = await createTestDatabase(adminUrl);
  cleanups.push(() => dropDatabase(adminUrl, new URL(url).pathname.slice(1)));
  return { DATABASE_URL: url, JWT_SECRET: secret };
}

describe.each(testBackends())("shutdown with waiting lease requests (%s)", (backend) => {
  it("answers them at once, with no work, and exits 0", async () => {
    const api = await started({ ...(await backendEnv(backend)), SHUTDOWN_TIMEOUT_MS: "60000" });
    const volunteers = await Promise.all([1, 2, 3].map(() => callJson(api, "POST", "/api/volunteers", { name: "waiter" })));
    const waiting = volunteers.map((v) => callJson(api, "POST", "/api/work/lease", waitMsBody, v.token));
    await new Promise((resolve) => setTimeout(resolve, 300));
    api.process.kill("SIGTERM");
    // With a 60 s drain and 25 s waits, only answering them at once ends this before the test's timeout.
    for (const answer of await Promise.all(waiting)) expect(answer).toEqual({ leases: [], retryAfterMs: 2000 });
    expect(await api.exited).toBe(0);
  });
});

// The Node server writes a held answer to the node response itself, with no web stream
// (docs/architecture.md, "Dispatch", waiting volunteers): what the client sees is as before.
describe.each(testBackends())("a waiting lease request on the Node server (%s)", (backend) => {
  it("gets its headers at once, the API's own among them, and stops waiting when its client goes", async () => {
    const metricsToken = "wait-test-metrics-token-0123456789";
    const api = await started({ ...(await backendEnv(backend)), METRICS_TOKEN: metricsToken });
    const waitingHere = async () => {
      const text = await (await fetch(`${api.base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
      return Number(/^crowdcompute_lease_requests_waiting (\d+)/m.exec(text)?.[1]);
    };
    const { token } = await callJson(api, "POST", "/api/volunteers", { name: "held" });
    const client = new AbortController();
    // fetch resolves with the headers: they come while the request waits.
    const response = await fetch(`${api.base}/api/work/lease`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(waitMsBody),
      signal: client.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await waitingHere()).toBe(1);
    client.abort();
    while ((await waitingHere()) !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
  });
});
