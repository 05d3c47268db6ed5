import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { openTestDb, type TestDb, testBackends } from "@crowdcompute/db/testing";
import { blockReports, type ChunkOutcomeReport, type Client, chunksOfLeases, createClient, type ResultLine } from "@crowdcompute/sdk";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/node/server.ts";
import { openTestApp, type TestApp, testEnv } from "./harness.ts";

/** A strict RFC 4180 reader, enough to check what the server wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += ch;
  }
  return rows;
}

describe.each(testBackends())("results download on %s", (backend) => {
  let t: TestApp;
  let creator: string;
  let taskId: string;
  const inputs = [{ text: 'say "hi", then leave' }, 2, "three"];

  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = (await t.register("results@example.com")).token;
    const task = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "mixed", code: "export default (x) => x", inputs, maxAttempts: 1, start: true } })).json.task;
    taskId = task.id;
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${taskId}`);
    const { token } = await t.volunteer();
    // Two threads: a new task gives 2 chunks a thread, so all three come in one block.
    const leases = (await t.call("POST", "/api/work/lease", { token, body: { max: 3, capabilities: { threads: 2 } } })).json.leases;
    expect(leases.map((b: { firstIndex: number; inputs: unknown[] }) => [b.firstIndex, b.inputs])).toEqual([[0, inputs]]);
    const { leaseId } = leases[0];
    const posted = await t.call("POST", "/api/work/results", {
      token,
      body: {
        results: [
          { leaseId, offset: 0, results: [{ echoed: inputs[0] }], errors: [{ offset: 1, kind: "throw", message: 'bad, "really"' }] },
          { leaseId, offset: 2, results: [[3, "x,y"]] },
        ],
      },
    });
    expect(posted.json).toEqual({ accepted: 3, rejected: [] });
  });
  afterAll(async () => t?.dispose());

  it("streams CSV with a header and one JSON cell per column", async () => {
    const csv = await t.call("GET", `/api/tasks/${taskId}/results?format=csv`, { token: creator });
    expect(csv.type).toMatch(/^text\/csv/);
    const rows = parseCsv(csv.text);
    expect(rows[0]).toEqual(["index", "status", "input", "result", "error"]);
    expect(
      rows.slice(1).map(([index, status, input, result, error]) => ({
        index: Number(index),
        status,
        input: JSON.parse(input!),
        result: result ? JSON.parse(result) : null,
        error: error ? JSON.parse(error) : null,
      })),
    ).toEqual([
      { index: 0, status: "done", input: inputs[0], result: { echoed: inputs[0] }, error: null },
      { index: 1, status: "failed", input: 2, result: null, error: { kind: "throw", message: 'bad, "really"' } },
      { index: 2, status: "done", input: "three", result: [3, "x,y"], error: null },
    ]);
  });

  it("refuses an unknown format", async () => {
    expect((await t.call("GET", `/api/tasks/${taskId}/results?format=xml`, { token: creator })).status).toBe(422);
  });

  it("follows a task woken by the polling feed (as on Workers, with no LISTEN)", async () => {
    const task = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "polled", code: "export default (x) => x", inputs: [5, 6], start: true } })).json.task;
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running' AND id <> ${task.id}`);
    const response = await t.app.request(`/api/tasks/${task.id}/results?follow=true`, { headers: { authorization: `Bearer ${creator}` } });
    expect(response.status).toBe(200);
    const body = response.text();
    const { token } = await t.volunteer();
    const [block] = (await t.call("POST", "/api/work/lease", { token, body: { max: 2, capabilities: { threads: 1 } } })).json.leases;
    await t.call("POST", "/api/work/results", { token, body: { results: [{ leaseId: block.leaseId, offset: 0, results: [50, 60] }] } });
    const lines = (await body)
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    expect(
      lines.map(({ cursor, ...line }) => {
        expect(cursor).toMatch(/^\d+-\d+$/);
        return line;
      }),
    ).toEqual([
      { index: 0, input: 5, status: "done", result: 50 },
      { index: 1, input: 6, status: "done", result: 60 },
    ]);
  });
});

/** The complete lines of a followed response, until it ends (`ended`) or `stopAfter` lines were read (the connection is then cut). */
async function readFollow(url: string, token: string, { stopAfter = Infinity }: { stopAfter?: number } = {}) {
  const cut = new AbortController();
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: cut.signal });
  if (response.status !== 200) throw new Error(`${response.status} ${await response.text()}`);
  const lines: string[] = [];
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(bytes, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        lines.push(buffered.slice(0, newline).replace(/\r$/, ""));
        buffered = buffered.slice(newline + 1);
        if (lines.length >= stopAfter) {
          cut.abort(); // mid-stream: whatever else was on its way is dropped with the connection
          return { lines, ended: false, type: response.headers.get("content-type") ?? "" };
        }
      }
    }
  } catch (error) {
    if (cut.signal.aborted) return { lines, ended: false, type: "" };
    return { lines, ended: false, broken: error as Error, type: response.headers.get("content-type") ?? "" };
  }
  expect(buffered).toBe("");
  return { lines, ended: true, type: response.headers.get("content-type") ?? "" };
}

const cursorOf = (line: string) => /,"cursor":"(\d+-\d+)"\}$/.exec(line)?.[1] ?? /,(\d+-\d+)$/.exec(line)?.[1];
const withoutCursor = (line: string) => line.replace(/,"cursor":"\d+-\d+"\}$/, "}").replace(/,\d+-\d+$/, "");

/**
 * An HTTP proxy to `target` that cuts the first `cuts` followed responses after `afterBytes`
 * bytes (inside a line), as a flaky network or a restarting load balancer would.
 */
async function cuttingProxy(target: URL, { cuts, afterBytes }: { cuts: number; afterBytes: number }) {
  const followRequests: string[] = [];
  let cutsLeft = cuts;
  const proxy: Server = createServer((req, res) => {
    const follow = /[?&]follow=true/.test(req.url ?? "");
    if (follow) followRequests.push(req.url!);
    const upstream = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      const cutThis = follow && up.statusCode === 200 && cutsLeft-- > 0;
      let sent = 0;
      let cut = false;
      up.on("data", (chunk: Buffer) => {
        if (cut) return;
        if (cutThis && sent + chunk.length >= afterBytes) {
          // The bytes up to the cut reach the client (written, then the connection drops).
          cut = true;
          up.destroy();
          res.write(chunk.subarray(0, afterBytes - sent), () => res.socket?.destroy());
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      up.on("end", () => res.end());
      up.on("error", () => res.destroy());
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    followRequests,
    close: () => new Promise<void>((resolve) => proxy.close(() => resolve())),
  };
}

describe.each(testBackends())("following results over HTTP on %s", (backend) => {
  let testDb: TestDb;
  let server: RunningServer;
  let creator: Client;
  let token: string;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    server = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0, embedded: backend === "pglite" }), webDist: "/nonexistent" });
    const anonymous = createClient({ baseUrl: server.url });
    token = (await anonymous.register("follow@example.com", "a long password")).token;
    creator = anonymous.withToken(token);
  });
  afterAll(async () => {
    await server?.close();
    await testDb?.dispose();
  });

  /** A volunteer leasing and reporting blocks until the task is over: every 13th chunk throws, and reports go in two parts. */
  async function volunteer(taskId: string, name: string) {
    const client = createClient({ baseUrl: server.url, token: (await creator.createVolunteer(name)).token });
    for (;;) {
      const { leases } = await client.lease({ max: 12, capabilities: { threads: 3 } });
      if (leases.length === 0) {
        if ((await creator.getTask(taskId)).status !== "running") return;
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      const outcomes: ChunkOutcomeReport[] = chunksOfLeases(leases).map((chunk) =>
        chunk.index % 13 === 5 ? { chunk, error: { kind: "throw", message: `no ${chunk.index}` } } : { chunk, result: { doubled: (chunk.input as number) * 2, note: 'a "quoted", comma' } },
      );
      const half = Math.ceil(outcomes.length / 2);
      for (const part of [outcomes.slice(0, half), outcomes.slice(half)]) if (part.length > 0) await client.submitResults(blockReports(part));
    }
  }

  it("streams every chunk as volunteers decide it, each once, across a broken and resumed connection, and ends with the task", { timeout: 120_000 }, async () => {
    const total = 300;
    const task = await creator.createTask({ name: "followed", code: "export default (x) => x", inputs: Array.from({ length: total }, (_, i) => i), maxAttempts: 1, start: true });
    const base = `${server.url}/api/tasks/${task.id}/results`;

    // Followers start before any result: one cut after 80 lines and resumed, one CSV unbroken,
    // and the SDK through a proxy that cuts its first three responses inside a line.
    const proxy = await cuttingProxy(new URL(server.url), { cuts: 3, afterBytes: 1500 });
    const broken = (async () => {
      const first = await readFollow(`${base}?follow=true`, token, { stopAfter: 80 });
      expect(first.ended).toBe(false);
      const rest = await readFollow(`${base}?follow=true&after=${cursorOf(first.lines.at(-1)!)}`, token);
      expect(rest.ended).toBe(true);
      expect(rest.type).toMatch(/^application\/x-ndjson/);
      return [...first.lines, ...rest.lines];
    })();
    const csv = readFollow(`${base}?follow=true&format=csv`, token);
    const viaSdk = (async () => {
      const lines: ResultLine[] = [];
      for await (const line of createClient({ baseUrl: proxy.url, token }).results(task.id, { follow: true })) lines.push(line);
      return lines;
    })();

    await Promise.all(["v1", "v2", "v3", "v4"].map((name) => volunteer(task.id, name)));
    const finished = await creator.getTask(task.id);
    expect(finished).toMatchObject({ status: "done", counts: { done: total - 23, failed: 23 } });

    // The download, in index order, is what every follower must have seen, each line once.
    const download = (await (await fetch(base, { headers: { authorization: `Bearer ${token}` } })).text()).split("\n").filter(Boolean);
    expect(download).toHaveLength(total);
    const followed = await broken;
    expect(followed.map(withoutCursor).sort()).toEqual([...download].sort());
    expect(new Set(followed.map(cursorOf)).size).toBe(total);

    const csvLines = (await csv).lines;
    expect(csvLines[0]).toBe("index,status,input,result,error,cursor");
    const csvDownload = (await (await fetch(`${base}?format=csv`, { headers: { authorization: `Bearer ${token}` } })).text()).split("\r\n").filter(Boolean);
    expect(csvLines.slice(1).map(withoutCursor).sort()).toEqual(csvDownload.slice(1).sort());

    const sdkLines = await viaSdk;
    expect(proxy.followRequests.length).toBe(4);
    expect(proxy.followRequests.slice(1).every((url) => /[?&]after=\d+-\d+/.test(url))).toBe(true);
    expect(sdkLines.map((line) => line.index).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(sdkLines.map(({ cursor: _cursor, ...line }) => JSON.stringify(line)).sort()).toEqual([...download].sort());
    await proxy.close();

    // Following an ended task gives what is left after the cursor, then ends.
    const after = await readFollow(`${base}?follow=true&after=${cursorOf(followed.at(-1)!)}`, token);
    expect(after).toMatchObject({ lines: [], ended: true });
  });

  it("follows from now: only the chunks decided after the request, its starting cursor in a header", async () => {
    const task = await creator.createTask({ name: "tail", code: "export default (x) => x", inputs: Array.from({ length: 10 }, (_, i) => i), start: true });
    const base = `${server.url}/api/tasks/${task.id}/results`;
    const early = createClient({ baseUrl: server.url, token: (await creator.createVolunteer("early")).token });
    // A task not yet measured gives 2 chunks a thread: the first four.
    const first = chunksOfLeases((await early.lease({ max: 4, capabilities: { threads: 2 } })).leases);
    expect(first.map((chunk) => chunk.index)).toEqual([0, 1, 2, 3]);
    await early.submitResults(blockReports(first.map((chunk) => ({ chunk, result: chunk.input }))));

    const response = await fetch(`${base}?follow=true&from=now`, { headers: { authorization: `Bearer ${token}` } });
    const start = response.headers.get("x-follow-after")!;
    expect(start).toMatch(/^\d+-2147483647$/);
    const tail = (async () => (await response.text()).split("\n").filter(Boolean))();
    await volunteer(task.id, "late");
    const lines = await tail;
    expect(lines.map((line) => JSON.parse(line).index).sort((a: number, b: number) => a - b)).toEqual([4, 5, 6, 7, 8, 9]);
    // The header's cursor resumes the same tail (a client broken before its first line).
    const again = await readFollow(`${base}?follow=true&after=${start}`, token);
    expect(again.lines).toEqual(lines);
  });

  it("refuses a cursor without follow, and one no line could carry", async () => {
    const task = await creator.createTask({ name: "cursors", code: "export default (x) => x", inputs: [1] });
    for (const query of ["after=1-2", "follow=true&after=x", "follow=true&after=18446744073709551616-0", "follow=yes", "from=now", "follow=true&from=later", "follow=true&from=now&after=1-2"]) {
      const response = await fetch(`${server.url}/api/tasks/${task.id}/results?${query}`, { headers: { authorization: `Bearer ${token}` } });
      expect({ query, status: response.status }).toEqual({ query, status: 422 });
    }
  });

  it("breaks a follow when the server shuts down, so that the client resumes rather than stop", async () => {
    const second = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0, embedded: backend === "pglite" }), webDist: "/nonexistent" });
    const task = await creator.createTask({ name: "shutdown", code: "export default (x) => x", inputs: [1, 2], start: true });
    const response = await fetch(`${second.url}/api/tasks/${task.id}/results?follow=true`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const read = reader.read();
    await second.close();
    await expect(read).rejects.toThrow();
  });
});
