// Security headers on every page and API answer (issue 15): the app page sent no CSP, no
// frame-ancestors or X-Frame-Options, no nosniff and no Referrer-Policy, so another origin
// could frame the task pages. Checked here over real HTTP against the Node entry; the
// browser test apps/web/test/csp.e2e.test.ts checks that Chromium runs the app under them
// and refuses to frame it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openTestDb, type TestDb } from "@crowdcompute/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/node/server.ts";
import { testEnv } from "./harness.ts";

describe("security headers over HTTP", () => {
  let testDb: TestDb;
  let server: RunningServer;
  const get = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init);

  beforeAll(async () => {
    // A stand-in for the built web app: its index page and a script.
    const webDist = mkdtempSync(join(tmpdir(), "cc-web-"));
    writeFileSync(join(webDist, "index.html"), '<!doctype html><html><head><script type="module" src="/app.js"></script></head><body></body></html>');
    writeFileSync(join(webDist, "app.js"), "console.log('app')");
    writeFileSync(join(webDist, "sw.js"), "self.addEventListener('fetch', () => {})");
    testDb = await openTestDb("pglite");
    server = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0 }), webDist });
  });
  afterAll(async () => {
    await server?.close();
    await testDb?.dispose();
  });

  const directives = (csp: string | null) =>
    new Map(
      (csp ?? "")
        .split(";")
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name!, values]),
    );

  it("sends every page a strict CSP that lets only the sandbox origin be framed and nobody frame the page", async () => {
    for (const path of ["/", "/tasks/0192aaaa-0000-7000-8000-000000000000", "/signin?mode=register", "/app.js", "/sw.js", "/no-such-file.png"]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("x-frame-options"), path).toBe("DENY");
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(res.headers.get("referrer-policy"), path).toBe("no-referrer");
      expect(res.headers.get("cross-origin-opener-policy"), path).toBe("same-origin");
      const csp = directives(res.headers.get("content-security-policy"));
      expect(csp.get("frame-ancestors"), path).toEqual(["'none'"]);
      // No inline script, no eval; WebAssembly only (the task form compiles .wat with wabt).
      expect(csp.get("script-src"), path).toEqual(["'self'", "'wasm-unsafe-eval'"]);
      expect(csp.get("object-src"), path).toEqual(["'none'"]);
      expect(csp.get("base-uri"), path).toEqual(["'none'"]);
      // The sandbox is the other loopback name on the sandbox port: the only frame the page may hold.
      expect(csp.get("frame-src"), path).toEqual([`http://127.0.0.1:${server.sandboxPort}`]);
    }
    const byAddress = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(directives(byAddress.headers.get("content-security-policy")).get("frame-src")).toEqual([`http://localhost:${server.sandboxPort}`]);
  });

  it("sends every API answer, errors included, headers that let it run or frame nothing", async () => {
    const answers = [
      await get("/api/health"),
      await get("/api/tasks"), // 401
      await get("/api/nothing-here"), // 404
      await get("/api/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: "{" }), // 400
      await get("/api/openapi.json"),
      await get("/api/docs/scalar.js"),
      await get("/metrics"), // 404 without METRICS_TOKEN
    ];
    for (const res of answers) {
      const what = `${res.url} ${res.status}`;
      expect(res.headers.get("x-content-type-options"), what).toBe("nosniff");
      expect(res.headers.get("x-frame-options"), what).toBe("DENY");
      expect(res.headers.get("referrer-policy"), what).toBe("no-referrer");
      expect(directives(res.headers.get("content-security-policy")).get("default-src"), what).toEqual(["'none'"]);
      expect(directives(res.headers.get("content-security-policy")).get("frame-ancestors"), what).toEqual(["'none'"]);
    }
    expect(answers.map((res) => res.status)).toEqual([200, 401, 404, 400, 200, 200, 404]);
  });

  it("lets the API reference page run its own scripts by a fresh nonce, and nothing else inline", async () => {
    const pages = [await get("/api/docs"), await get("/api/docs")];
    const nonces = [];
    for (const res of pages) {
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      const csp = directives(res.headers.get("content-security-policy"));
      const [nonce, ...rest] = csp.get("script-src")!;
      expect(nonce).toMatch(/^'nonce-[A-Za-z0-9+/]{22}=='$/);
      expect(rest).toEqual([]);
      expect(csp.get("frame-ancestors")).toEqual(["'none'"]);
      const html = await res.text();
      const value = nonce!.slice("'nonce-".length, -1);
      const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
      expect(scripts.length).toBeGreaterThan(0);
      for (const tag of scripts) expect(tag).toContain(`nonce="${value}"`);
      expect(html).toContain('src="/api/docs/scalar.js"');
      nonces.push(value);
    }
    expect(nonces[0]).not.toBe(nonces[1]);
  });
});
