// `npm start` runs the bundle (dist/main.js), not src/: it must find everything our modules
// locate beside themselves (migrations, the web app, the docs script, PGlite's files), and
// it must stay small — resolving the unbundled module graph costs ~180 MB of RSS on its own.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, dropDatabase, freePort, testBackends } from "@crowdcompute/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundlePath, bundleServer, serverNodeFlags } from "../scripts/bundle.ts";
import { spawnServer } from "./server-process.ts";

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

describe.each(testBackends())("the bundled Node entry on %s", (backend) => {
  let child: ChildProcess;
  let base: string;
  let sandboxBase: string;
  let dataDir: string;
  let databaseUrl: string | null = null;
  let idleRssMb = 0;

  beforeAll(async () => {
    await bundleServer();
    dataDir = mkdtempSync(join(tmpdir(), "cc-bundle-"));
    if (backend === "postgres") databaseUrl = await createTestDatabase(process.env.DATABASE_URL!);
    const port = await freePort();
    const sandboxPort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(port), SANDBOX_PORT: String(sandboxPort), JWT_SECRET: "bundle-test-secret-bundle-test-secret" };
    if (databaseUrl) env.DATABASE_URL = databaseUrl;
    else delete env.DATABASE_URL;
    // Started from elsewhere than the repository: nothing may depend on the working directory.
    child = (await spawnServer([...serverNodeFlags, bundlePath], { cwd: tmpdir(), env })).child;
    idleRssMb = rssMb(child.pid!);
    base = `http://127.0.0.1:${port}`;
    sandboxBase = `http://127.0.0.1:${sandboxPort}`;
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    if (databaseUrl) await dropDatabase(process.env.DATABASE_URL!, new URL(databaseUrl).pathname.slice(1));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("migrates its database and serves the API, the web app, the docs script and the sandbox", async () => {
    expect(await (await fetch(`${base}/api/health`)).json()).toEqual({ status: "ok", db: "ok" });
    const register = await fetch(`${base}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "bundle@example.com", password: "bundle password" }),
    });
    expect(register.status).toBe(201);
    const page = await fetch(`${base}/`);
    expect(await page.text()).toMatch(/^<!doctype html>/i);
    const docs = await fetch(`${base}/api/docs/scalar.js`);
    expect(docs.status).toBe(200);
    expect((await docs.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    const sandbox = await fetch(`${sandboxBase}/`);
    expect(sandbox.status).toBe(200);
    expect(sandbox.headers.get("content-security-policy")).toContain("sha256-");
    // Measured: ~90 MB bundled, ~270 MB running src/ through type stripping. (Embedded
    // PGlite adds its own WebAssembly heap, ~350 MB, which no bundling changes.)
    if (backend === "postgres") expect(idleRssMb).toBeLessThan(150);
  });
});

describe("npm start", () => {
  it("runs the bundle with the flags the server is measured with (scripts/bundle.ts)", () => {
    const startScript = (path: string) => (JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as { scripts: { start: string } }).scripts.start;
    const flags = serverNodeFlags.join(" ");
    expect(startScript("../../../package.json")).toContain(`node ${flags} apps/api/dist/main.js`);
    expect(startScript("../package.json")).toContain(`node ${flags} dist/main.js`);
  });
});
