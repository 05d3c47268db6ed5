// Graceful shutdown of the Node entry: on SIGTERM the process stops accepting connections,
// lets a request in flight finish (its effect lands in the database), ends open event
// streams instead of waiting for them, and exits 0; a request still running after
// SHUTDOWN_TIMEOUT_MS is cut.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Db } from "@crowdcompute/db";
import { createPgliteDb } from "@crowdcompute/db/pglite";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { type Backend, createTestDatabase, dropDatabase, freePort, testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { callJson, spawnServer } from "./server-process.ts";

const apiRoot = fileURLToPath(new URL("..", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rows of `statement` on either driver (postgres.js answers an array, PGlite `{ rows }`). */
async function queryRows<T>(db: Db, statement: ReturnType<typeof sql>): Promise<T[]> {
  const out: unknown = await db.execute(statement);
  return (Array.isArray(out) ? out : (out as { rows: T[] }).rows) as T[];
}

interface Api {
  base: string;
  port: number;
  process: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; at: number }>;
}

async function startApi(env: Record<string, string>): Promise<Api> {
  const port = await freePort();
  const fullEnv = { ...process.env, ...env, PORT: String(port), SANDBOX_PORT: String(await freePort()) };
  const { child, output } = await spawnServer(["src/main.ts"], { cwd: apiRoot, env: fullEnv });
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once("exit", (code) => resolve({ code, at: Date.now() })));
  return { base: `http://127.0.0.1:${port}`, port, process: child, output, exited };
}

/** Resolves with the error code of a new TCP connection to `port` (null when it connected). */
function tryConnect(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(null);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
  });
}

/** A request body of `pieces` NDJSON pieces of `linesPerPiece` lines, one piece per `everyMs`; `sent` counts them. */
function slowNdjson(pieces: number, linesPerPiece: number, everyMs: number) {
  const encoder = new TextEncoder();
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent > 0) await sleep(everyMs);
      if (sent === pieces) return controller.close();
      const first = sent * linesPerPiece;
      controller.enqueue(encoder.encode(`${Array.from({ length: linesPerPiece }, (_, i) => JSON.stringify({ n: first + i })).join("\n")}\n`));
      sent++;
    },
  });
  return { body, sent: () => sent };
}

interface Setup {
  env: Record<string, string>;
  /** Rows of a query against the API's database, opened after the API exited. */
  query<T>(statement: ReturnType<typeof sql>): Promise<T[]>;
  dispose(): Promise<void>;
}

async function setUp(backend: Backend): Promise<Setup> {
  if (backend === "postgres") {
    const adminUrl = process.env.DATABASE_URL!;
    const url = await createTestDatabase(adminUrl);
    return {
      env: { DATABASE_URL: url, JWT_SECRET: "shutdown-test-secret-shutdown-test-secret" },
      async query(statement) {
        const handle = createPostgresDb(url, { max: 1 });
        try {
          return await queryRows(handle.db, statement);
        } finally {
          await handle.close();
        }
      },
      dispose: () => dropDatabase(adminUrl, new URL(url).pathname.slice(1)),
    };
  }
  const dataDir = mkdtempSync(join(tmpdir(), "cc-shutdown-"));
  return {
    // Empty means unset: the embedded database under DATA_DIR.
    env: { DATABASE_URL: "", JWT_SECRET: "", DATA_DIR: dataDir },
    async query(statement) {
      const handle = await createPgliteDb(join(dataDir, "pglite"));
      try {
        return await queryRows(handle.db, statement);
      } finally {
        await handle.close();
      }
    },
    dispose: async () => {},
  };
}

describe.each(testBackends())("graceful shutdown (%s)", (backend) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function startWithTask(extraEnv: Record<string, string> = {}) {
    const setup = await setUp(backend);
    cleanups.push(() => setup.dispose());
    const api = await startApi({ ...setup.env, ...extraEnv });
    cleanups.push(async () => {
      if (api.process.exitCode === null && api.process.signalCode === null) api.process.kill("SIGKILL");
      await api.exited;
    });
    const { token } = await callJson(api, "POST", "/api/auth/register", { email: "shutdown@example.com", password: "a long password" });
    // No inputs at creation: they come as NDJSON uploads.
    const { task } = await callJson(api, "POST", "/api/tasks", { name: "shutdown", code: "export default (x) => x" }, token);
    return { setup, api, token, taskId: task.id as string };
  }

  it("finishes the upload in flight, ends event streams, refuses new connections and exits 0 at once", { timeout: 60_000 }, async () => {
    const { setup, api, token, taskId } = await startWithTask();

    const events = await fetch(`${api.base}/api/tasks/${taskId}/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(events.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const eventReader = events.body!.getReader();
    expect(new TextDecoder().decode((await eventReader.read()).value)).toContain("event: progress");
    const eventsEnded = (async () => {
      while (!(await eventReader.read()).done);
      return Date.now();
    })();

    // 20 pieces of 500 lines, one every 100 ms: about 2 s in flight.
    const upload = slowNdjson(20, 500, 100);
    const uploaded = fetch(`${api.base}/api/tasks/${taskId}/inputs?offset=0&seal=true`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
      body: upload.body,
      duplex: "half",
    } as RequestInit).then(async (response) => ({ status: response.status, json: await response.json(), at: Date.now() }));
    while (upload.sent() < 3) await sleep(10);

    api.process.kill("SIGTERM");
    while (!api.output().includes("SIGTERM: shutting down")) await sleep(10);
    expect(await tryConnect(api.port)).toBe("ECONNREFUSED");
    expect(upload.sent()).toBeLessThan(20);

    const response = await uploaded;
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ total: 10_000, sealed: true });
    const exit = await api.exited;
    expect(exit.code).toBe(0);
    // The event stream would have held the process for SHUTDOWN_TIMEOUT_MS (10 s by default).
    expect(exit.at - response.at).toBeLessThan(3_000);
    expect(await eventsEnded).toBeLessThanOrEqual(exit.at);

    const [row] = await setup.query<{ total: number; sealed: boolean; inputs: number }>(
      sql`SELECT t.total, t.sealed, (SELECT count(*)::int FROM chunk_inputs c WHERE c.task_id = t.id) AS inputs FROM tasks t WHERE t.id = ${taskId}`,
    );
    expect(row).toEqual({ total: 10_000, sealed: true, inputs: 10_000 });
  });

  it("cuts a request still running after SHUTDOWN_TIMEOUT_MS, and still exits 0", { timeout: 60_000 }, async () => {
    const { api, token, taskId } = await startWithTask({ SHUTDOWN_TIMEOUT_MS: "1000" });
    // One piece, then a stall far longer than the timeout.
    const upload = slowNdjson(2, 10, 60_000);
    const uploaded = fetch(`${api.base}/api/tasks/${taskId}/inputs?offset=0`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
      body: upload.body,
      duplex: "half",
    } as RequestInit).then(
      (response) => response.status,
      () => "cut",
    );
    while (upload.sent() < 1) await sleep(10);
    await sleep(200);
    const signalledAt = Date.now();
    api.process.kill("SIGTERM");
    const exit = await api.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(1_000);
    expect(exit.at - signalledAt).toBeLessThan(8_000);
    expect(await uploaded).toBe("cut");
    expect(api.output()).toContain("cut 1 request");
  });
});
