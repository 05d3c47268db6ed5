// The Node entry over real HTTP, driven by the SDK: both loopbacks, the web build, the
// sandbox origin and its headers.
import { openTestDb, type TestDb } from "@crowdcompute/db/testing";
import { ApiError, createClient } from "@crowdcompute/sdk";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../src/node/server.ts";
import { testEnv } from "./harness.ts";

describe("Node server", () => {
  let testDb: TestDb;
  let server: RunningServer;

  beforeAll(async () => {
    testDb = await openTestDb("pglite");
    const webDist = mkdtempSync(join(tmpdir(), "cc-web-"));
    writeFileSync(join(webDist, "index.html"), "<!doctype html><title>volunteer page</title>");
    writeFileSync(join(webDist, "app.js"), "console.log('app')");
    server = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0 }), webDist });
  });
  afterAll(async () => {
    await server?.close();
    await testDb?.dispose();
  });

  it("serves the API on both loopbacks", async () => {
    for (const host of ["127.0.0.1", "[::1]", "localhost"]) {
      expect(await createClient({ baseUrl: `http://${host}:${server.port}` }).health()).toEqual({ status: "ok", db: "ok" });
    }
  });

  it("serves the web build, with the page for client-side routes", async () => {
    const script = await fetch(`http://127.0.0.1:${server.port}/app.js`);
    expect(await script.text()).toBe("console.log('app')");
    const deepLink = await fetch(`http://127.0.0.1:${server.port}/tasks/123`);
    expect(await deepLink.text()).toContain("volunteer page");
  });

  it("tells each page the sandbox origin on the other loopback name", async () => {
    const viaLocalhost = await createClient({ baseUrl: `http://localhost:${server.port}` }).config();
    expect(viaLocalhost.sandboxOrigin).toBe(`http://127.0.0.1:${server.sandboxPort}`);
    const viaIp = await createClient({ baseUrl: `http://127.0.0.1:${server.port}` }).config();
    expect(viaIp.sandboxOrigin).toBe(`http://localhost:${server.sandboxPort}`);
  });

  it("serves only the locked-down bootstrap document on the sandbox origin", async () => {
    const response = await fetch(`http://127.0.0.1:${server.sandboxPort}/`);
    expect(response.status).toBe(200);
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'none'/);
    expect(csp).not.toMatch(/'self'/);
    expect(csp).toContain(`frame-ancestors http://localhost:${server.port} http://127.0.0.1:${server.port}`);
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("permissions-policy")).toContain("camera=()");
    expect((await fetch(`http://127.0.0.1:${server.sandboxPort}/api/health`)).status).toBe(404);
  });

  it("serves the API reference page with its script from this server, so it works offline", async () => {
    const page = await (await fetch(`http://127.0.0.1:${server.port}/api/docs`)).text();
    expect(page).toContain("/api/docs/scalar.js");
    expect(page).not.toContain("cdn.jsdelivr.net");
    const script = await fetch(`http://127.0.0.1:${server.port}/api/docs/scalar.js`);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  it("turns problems into ApiError with the server's details", async () => {
    const client = createClient({ baseUrl: server.url });
    const error = await client.getTask("01900000-0000-7000-8000-000000000000").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect((error as ApiError).problem.detail).toMatch(/Authorization/);
  });

  it("streams results line by line through the SDK", async () => {
    const anonymous = createClient({ baseUrl: server.url });
    const creator = anonymous.withToken((await anonymous.register("sdk@example.com", "a long password")).token);
    const task = await creator.createTask({ name: "echo", code: "export default (x) => x", inputs: ["a", "b"], start: true });
    const volunteer = anonymous.withToken((await anonymous.createVolunteer()).token);
    const { leases } = await volunteer.lease({ max: 2 });
    expect(await volunteer.taskCode(task.id)).toBe("export default (x) => x");
    const posted = await volunteer.submitResults(leases.map((lease) => ({ leaseId: lease.leaseId, result: `${lease.input}!`, cpuMs: 1 })));
    expect(posted).toEqual({ accepted: 2, rejected: [] });
    const lines = [];
    for await (const line of creator.results(task.id)) lines.push(line);
    expect(lines).toEqual([
      { index: 0, input: "a", status: "done", result: "a!" },
      { index: 1, input: "b", status: "done", result: "b!" },
    ]);
    expect((await creator.getTask(task.id)).status).toBe("done");
  });

  it("reads streamed NDJSON inputs from the socket, and counts them against the 64 MiB limit", async () => {
    const anonymous = createClient({ baseUrl: server.url });
    const { token } = await anonymous.register("streamer@example.com", "a long password");
    const task = await anonymous.withToken(token).createTask({ name: "streamed", code: "export default (x) => x", start: true });
    // A body with no Content-Length: `lines` lines of `bytes` bytes each, made as they are read.
    const upload = (offset: number, lines: number, bytes: number) => {
      let sent = 0;
      const line = new TextEncoder().encode(`"${"x".repeat(bytes - 3)}"\n`);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ >= lines) controller.close();
          else controller.enqueue(line);
        },
      });
      return fetch(`${server.url}/api/tasks/${task.id}/inputs?offset=${offset}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
        body,
        duplex: "half",
      } as RequestInit);
    };
    const fine = await upload(0, 3000, 100);
    expect(await fine.json()).toEqual({ total: 3000, sealed: false });
    const tooBig = await upload(3000, 129, 512 * 1024);
    expect(tooBig.status).toBe(413);
    const problem = (await tooBig.json()) as { detail: string };
    expect(problem.detail).toContain("64 MiB");
    expect(problem.detail).toContain("?offset=");
    // The refused upload stored nothing: the next one starts where the first one ended.
    expect(await (await upload(3000, 1, 100)).json()).toEqual({ total: 3001, sealed: false });
  });
});
