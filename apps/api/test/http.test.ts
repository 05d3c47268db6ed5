// The Node entry over real HTTP, driven by the SDK: both loopbacks, the web build, the
// sandbox origin and its headers.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { get, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { openTestDb, type TestDb } from "@crowdcompute/db/testing";
import { ApiError, blockReports, chunksOfLeases, createClient } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/node/server.ts";
import { testEnv } from "./harness.ts";

const hashedScript = `console.log(${JSON.stringify("x".repeat(4096))})`;

/** A GET whose body comes back as sent, compressed or not. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
    }).on("error", reject);
  });
}

describe("Node server", () => {
  let testDb: TestDb;
  let server: RunningServer;

  beforeAll(async () => {
    testDb = await openTestDb("pglite");
    const webDist = mkdtempSync(join(tmpdir(), "cc-web-"));
    writeFileSync(join(webDist, "index.html"), "<!doctype html><title>volunteer page</title>");
    writeFileSync(join(webDist, "app.js"), "console.log('app')");
    // A hashed asset as the web build writes it, with its compressed copies.
    mkdirSync(join(webDist, "assets"));
    writeFileSync(join(webDist, "assets", "index-AbCd12_-.js"), hashedScript);
    writeFileSync(join(webDist, "assets", "index-AbCd12_-.js.gz"), gzipSync(hashedScript));
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

  it("serves files compressed as built, keeps hashed ones for a year and asks again for the rest", async () => {
    const base = `http://127.0.0.1:${server.port}`;
    // fetch() would decompress for us: read the bytes as sent.
    const hashed = await rawGet(`${base}/assets/index-AbCd12_-.js`, { "accept-encoding": "gzip, deflate" });
    expect(hashed.headers["content-encoding"]).toBe("gzip");
    expect(hashed.headers.vary).toMatch(/accept-encoding/i);
    expect(hashed.headers["content-type"]).toMatch(/javascript/);
    expect(hashed.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(gunzipSync(hashed.body).toString()).toBe(hashedScript);
    const plain = await fetch(`${base}/assets/index-AbCd12_-.js`, { headers: { "accept-encoding": "identity" } });
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(await plain.text()).toBe(hashedScript);
    for (const path of ["/app.js", "/", "/tasks/123"]) expect((await fetch(`${base}${path}`)).headers.get("cache-control"), path).toBe("no-cache");
  });

  it("serves the API reference page with its script from this server, so it works offline", async () => {
    const page = await (await fetch(`http://127.0.0.1:${server.port}/api/docs`)).text();
    expect(page).toContain("/api/docs/scalar.js");
    expect(page).not.toContain("cdn.jsdelivr.net");
    const script = await fetch(`http://127.0.0.1:${server.port}/api/docs/scalar.js`, { headers: { "accept-encoding": "br" } });
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect(script.headers.get("content-encoding")).toBe("br");
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
    // One thread of a task not yet measured: two chunks, in one block.
    const { leases } = await volunteer.lease({ max: 2, capabilities: { threads: 1 } });
    expect(leases.map((block) => [block.taskId, block.firstIndex, block.inputs])).toEqual([[task.id, 0, ["a", "b"]]]);
    expect(await volunteer.taskCode(task.id)).toBe("export default (x) => x");
    const reports = blockReports(chunksOfLeases(leases).map((chunk) => ({ chunk, result: `${chunk.input}!`, cpuMs: 1 })));
    expect(reports).toEqual([{ leaseId: leases[0]!.leaseId, offset: 0, results: ["a!", "b!"], cpuMs: 2 }]);
    const posted = await volunteer.submitResults(reports);
    expect(posted).toEqual({ accepted: 2, rejected: [] });
    const lines = [];
    for await (const line of creator.results(task.id)) lines.push(line);
    expect(lines).toEqual([
      { index: 0, input: "a", status: "done", result: "a!" },
      { index: 1, input: "b", status: "done", result: "b!" },
    ]);
    expect((await creator.getTask(task.id)).status).toBe("done");
  });

  it("reads a streamed NDJSON part from the socket whole, and counts it against the 8 MiB limit", async () => {
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
    const tooBig = await upload(3000, 17, 512 * 1024);
    expect(tooBig.status).toBe(413);
    const problem = (await tooBig.json()) as { detail: string };
    expect(problem.detail).toContain("8 MiB");
    expect(problem.detail).toContain("?offset=");
    // The refused upload stored nothing: the next one starts where the first one ended.
    expect(await (await upload(3000, 1, 100)).json()).toEqual({ total: 3001, sealed: false });
  });
});
