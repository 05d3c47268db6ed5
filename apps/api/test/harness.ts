import type { Db } from "@crowdcompute/db";
import { type Backend, openTestDb, type TestDb } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { type App, type AppOptions, createApp } from "../src/create-app.ts";
import type { AppEnv } from "../src/env.ts";

export const testEnv = (overrides: Partial<AppEnv> = {}): AppEnv => ({
  databaseUrl: null,
  port: 8787,
  sandboxPort: 8788,
  sandboxOrigin: null,
  publicUrl: null,
  jwtSecret: "test-secret-test-secret-test-secret-0123",
  dataDir: "./data",
  adminEmail: null,
  requireCreatorApproval: false,
  leaseGraceMs: 30_000,
  leaseSilentMs: 15_000,
  idleRetryMs: 2_000,
  metricsToken: null,
  shutdownTimeoutMs: 10_000,
  leaseBounds: { perVolunteer: 16_384, perSource: 65_536, maxThreads: 64, maxBufferMs: 60_000 },
  leaseWaiting: { perSource: 256, total: 20_000, arrivingMax: 64 },
  trustedProxies: [],
  bounds: {
    bodyBytesInFlight: 96 * 1024 * 1024,
    bodyBytesPerSource: 16 * 1024 * 1024,
    bodyIdleMs: 15_000,
    bodyTimeoutMs: 120_000,
    streamsPerCreator: 16,
    streamsPerSource: 64,
    uploadsPerCreator: 4,
  },
  // Suites mint many volunteers from one source ("unknown" in process, loopback over HTTP): the
  // minting limits are raised here; the tests of those limits set their own.
  limits: { loginPerAccount: 10, loginPerIp: 50, registerPerIp: 30, mintPerHour: 100_000, mintPerDay: 100_000, mintPerAccountPerDay: 100_000 },
  embedded: true,
  ...overrides,
});

export interface CallOptions {
  token?: string;
  body?: unknown;
  raw?: BodyInit;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  type: string;
  text: string;
  json: any;
  headers: Headers;
}

type Fetcher = (path: string, init: RequestInit) => Promise<Response>;

/**
 * JSON helpers over any way of reaching the API: `app.request` in process, or `fetch` to a
 * base URL (the Workers entry under `wrangler dev`), so one suite runs against both.
 */
export function apiClient(fetcher: Fetcher) {
  const call = async (method: string, path: string, options: CallOptions = {}): Promise<CallResult> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: BodyInit | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined && typeof body === "string") headers["content-type"] ??= "application/json";
    const response = await fetcher(path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    const json = type.includes("json") && !type.includes("ndjson") && text ? JSON.parse(text) : undefined;
    return { status: response.status, type, text, json, headers: response.headers };
  };

  const register = async (email: string, password = "correct horse") => {
    const res = await call("POST", "/api/auth/register", { body: { email, password } });
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
    return res.json as { token: string; user: { id: string; email: string; role: string; status: string } };
  };

  const volunteer = async (token?: string) => {
    const res = await call("POST", "/api/volunteers", { body: { name: "test volunteer" }, ...(token ? { token } : {}) });
    if (res.status !== 201) throw new Error(`volunteer failed: ${res.status} ${res.text}`);
    return res.json as { token: string; volunteer: { id: string } };
  };

  return { call, register, volunteer, fetcher };
}

/** What a suite needs: a way to call the API, and the database behind it for checks. */
export interface ApiTarget extends ReturnType<typeof apiClient> {
  /** "pglite" | "postgres" in process; "workers" over HTTP. */
  name: string;
  db: Db;
  dispose(): Promise<void>;
}

/** An app over a fresh database of the given backend, and helpers that speak JSON to it. */
export async function openTestApp(backend: Backend, env: Partial<AppEnv> = {}, options: Omit<AppOptions, "db" | "env"> = {}) {
  const testDb: TestDb = await openTestDb(backend);
  const app: App = createApp({ db: testDb.handle.db, env: testEnv(env), ...options });
  const client = apiClient(async (path, init) => app.request(path, init));
  return { ...client, name: backend as string, app, testDb, db: testDb.handle.db, dispose: () => testDb.dispose() };
}

export type TestApp = Awaited<ReturnType<typeof openTestApp>>;

const countQueries = new WeakMap<Db, string>();

/**
 * Every table's row count, but the abuse counters (`rate_limits`, whose purpose is to
 * count rejected requests): a rejected request must leave these unchanged. One round trip.
 */
export async function rowCounts(t: { db: Db }): Promise<Record<string, number>> {
  const rows = (out: unknown) => (Array.isArray(out) ? out : (out as { rows: unknown[] }).rows) as Record<string, unknown>[];
  let query = countQueries.get(t.db);
  if (!query) {
    const tables = rows(
      await t.db.execute(sql`SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'rate_limits' ORDER BY 1`),
    ).map((r) => String(r.name));
    query = `SELECT ${tables.map((table) => `(SELECT count(*)::int FROM "${table}") AS "${table}"`).join(", ")}`;
    countQueries.set(t.db, query);
  }
  const [row] = rows(await t.db.execute(sql.raw(query)));
  return Object.fromEntries(Object.entries(row!).map(([table, n]) => [table, Number(n)]));
}
