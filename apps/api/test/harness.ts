import { openTestDb, type Backend, type TestDb } from "@crowdcompute/db/testing";
import { createApp, type App } from "../src/create-app.ts";
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
  idleRetryMs: 2_000,
  embedded: true,
  ...overrides,
});

/** An app over a fresh database of the given backend, and helpers that speak JSON to it. */
export async function openTestApp(backend: Backend, env: Partial<AppEnv> = {}) {
  const testDb: TestDb = await openTestDb(backend);
  const app: App = createApp({ db: testDb.handle.db, env: testEnv(env) });

  const call = async (method: string, path: string, options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] ??= "application/json";
    const response = await app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    const json = type.includes("json") && !type.includes("ndjson") && text ? JSON.parse(text) : undefined;
    return { status: response.status, type, text, json, headers: response.headers };
  };

  const register = async (email: string, password = "correct horse") => {
    const res = await call("POST", "/api/auth/register", { body: { email, password } });
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
    return res.json as { token: string; user: { id: string; email: string; role: string } };
  };

  const volunteer = async (token?: string) => {
    const res = await call("POST", "/api/volunteers", { body: { name: "test volunteer" }, ...(token ? { token } : {}) });
    if (res.status !== 201) throw new Error(`volunteer failed: ${res.status} ${res.text}`);
    return res.json as { token: string; volunteer: { id: string } };
  };

  return { app, testDb, db: testDb.handle.db, call, register, volunteer, dispose: () => testDb.dispose() };
}

export type TestApp = Awaited<ReturnType<typeof openTestApp>>;
