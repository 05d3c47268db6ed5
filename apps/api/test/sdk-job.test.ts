// The SDK's job API (`@crowdcompute/sdk/node`) against the Node server over real HTTP, with
// volunteers leasing and reporting blocks concurrently: results, progress and done events,
// inputs uploaded in parts (a part whose answer was lost is not stored twice), cancel.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openTestDb, type TestDb, testBackends } from "@crowdcompute/db/testing";
import { blockReports, chunksOfLeases, createClient, InputUploadError, inputParts, type NodeClient, type ResultLine, type Task, uploadInputParts } from "@crowdcompute/sdk/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/node/server.ts";
import { testEnv } from "./harness.ts";

describe.each(testBackends())("the job API against the Node server on %s", (backend) => {
  let testDb: TestDb;
  let server: RunningServer;
  let cc: NodeClient;
  const dirs: string[] = [];

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    server = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0, embedded: backend === "pglite" }), webDist: "/nonexistent" });
    const anonymous = createClient({ baseUrl: server.url });
    const session = anonymous.withToken((await anonymous.register("jobs@example.com", "a long password")).token);
    cc = anonymous.withToken((await session.createApiKey("jobs")).key);
  });
  afterAll(async () => {
    await server?.close();
    await testDb?.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A volunteer that computes `fn` of each input (it stands in for the browser), until `until` resolves. */
  async function volunteer(fn: (input: unknown) => unknown, until: Promise<unknown>) {
    let over = false;
    void until.then(
      () => (over = true),
      () => (over = true),
    );
    const client = createClient({ baseUrl: server.url, token: (await cc.createVolunteer("sim")).token });
    while (!over) {
      const { leases } = await client.lease({ max: 8, capabilities: { threads: 2 } });
      if (leases.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      await client.submitResults(blockReports(chunksOfLeases(leases).map((chunk) => ({ chunk, result: fn(chunk.input) }))));
    }
  }

  it("computes a function over an array: every result once, progress, then done", async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => i);
    const job = await cc.compute(inputs, (n: number) => n * n, { name: "squares", timeoutMs: 5_000, replication: 1, priority: 3 });
    const events: string[] = [];
    const results: ResultLine[] = [];
    const progress: Task[] = [];
    job.on("result", (line) => {
      results.push(line);
      events.push("result");
    });
    job.on("progress", (task) => progress.push(task));
    job.on("done", () => events.push("done"));
    expect(job.task).toMatchObject({ name: "squares", status: "running", timeoutMs: 5_000, priority: 3, counts: { total: 40 } });
    // The work went as a module whose default export is the function.
    expect(await cc.taskCode(job.id)).toMatch(/n \* n/);

    const [task] = await Promise.all([job.done(), volunteer((n) => (n as number) * (n as number), job.done()), volunteer((n) => (n as number) * (n as number), job.done())]);
    expect(task).toMatchObject({ status: "done", counts: { done: 40, failed: 0 } });
    expect(results.map((r) => r.index).sort((a, b) => a - b)).toEqual(inputs);
    for (const r of results) expect(r).toMatchObject({ status: "done", input: r.index, result: r.index * r.index, cursor: expect.stringMatching(/^\d+-\d+$/) });
    expect(events.at(-1)).toBe("done");
    expect(events.filter((e) => e === "done")).toHaveLength(1);
    expect(progress.at(-1)).toMatchObject({ status: "done", counts: { done: 40 } });
    // results() follows anew from the first chunk, however late it is called.
    const again: number[] = [];
    for await (const r of job.results()) again.push(r.index);
    expect(again.sort((a, b) => a - b)).toEqual(inputs);
  });

  it("uploads streamed inputs in parts into a draft, starts it, and follows a work file with imports", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cc-job-"));
    dirs.push(dir);
    writeFileSync(join(dir, "helper.js"), "export const triple = (x) => 3 * x;\n");
    writeFileSync(join(dir, "work.js"), 'import { triple } from "./helper.js";\nexport default async function work(input) { return triple(input.n); }\n');
    async function* values() {
      for (let n = 0; n < 120; n++) yield { n };
    }
    const uploaded: number[] = [];
    const job = await cc.compute(values(), pathToFileURL(join(dir, "work.js")), { onUpload: (stored) => uploaded.push(stored) });
    expect(job.task).toMatchObject({ name: "work", status: "running", sealed: true, counts: { total: 120 } });
    expect(uploaded.at(-1)).toBe(120);
    const code = await cc.taskCode(job.id);
    expect(code).toContain("3 * x");
    expect(code).not.toMatch(/^import /m);
    const lines: ResultLine[] = [];
    const following = (async () => {
      for await (const line of job.results()) lines.push(line);
    })();
    await Promise.all([job.done(), volunteer((input) => 3 * (input as { n: number }).n, job.done())]);
    await following;
    expect(lines.map((l) => (l.status === "done" ? l.result : null)).sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: 120 }, (_, n) => 3 * n));
  });

  it("sends a part whose answer was lost only once, and says how far an upload got when it stops", async () => {
    const draft = await cc.createTask({ name: "parts", code: "export default (x) => x" });
    let lose = 2;
    // The second part lands, but its answer is lost on the way back (twice).
    const flaky: Pick<NodeClient, "appendInputs" | "getTask"> = {
      getTask: cc.getTask,
      appendInputs: async (id, text, options) => {
        const answer = await cc.appendInputs(id, text, options);
        if (options.offset === 3 && lose-- > 0) throw new TypeError("fetch failed");
        return answer;
      },
    };
    const parts = inputParts(
      Array.from({ length: 10 }, (_, i) => ({ i })),
      { maxChars: 24 },
    );
    const stored = await uploadInputParts(flaky, draft.id, parts, { backoffMs: () => 1 });
    expect(stored).toBe(10);
    expect((await cc.getTask(draft.id)).counts.total).toBe(10);
    expect(await cc.getTask(draft.id)).toMatchObject({ status: "draft", sealed: true, counts: { total: 10 } });
    const listed = await cc.listChunks(draft.id, { limit: 20 });
    expect(listed.items.map((c) => c.input)).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));

    // A refusal is not retried: the error says what was stored.
    const other = await cc.createTask({ name: "refused", code: "export default (x) => x" });
    const refused = await uploadInputParts(cc, other.id, [['{"ok":1}'], ["not json"]], { backoffMs: () => 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InputUploadError);
    expect((refused as InputUploadError).stored).toBe(1);
  });

  it("tells its listeners the chunks running now and every chunk's console output, all before done", async () => {
    const job = await cc.compute([1, 2, 3, 4, 5, 6], (n: number) => n + 1, { name: "chatty" });
    const outputs: { index: number; text: string }[] = [];
    const running: number[][] = [];
    const order: string[] = [];
    job.on("console", (output) => {
      outputs.push({ index: output.index, text: output.lines[0]!.text });
      order.push("console");
    });
    job.on("chunks", (items) => running.push(items.map((c) => c.index)));
    job.on("done", () => order.push("done"));
    // A volunteer that reports progress for its first chunk, waits to see it reach the job,
    // then reports every chunk with a line of console output.
    const client = createClient({ baseUrl: server.url, token: (await cc.createVolunteer("chatty")).token });
    await new Promise((resolve) => setTimeout(resolve, 50)); // the job's stream is open
    let leases: Awaited<ReturnType<typeof client.lease>>["leases"] = [];
    while (leases.length === 0) leases = (await client.lease({ max: 6, capabilities: { threads: 3 } })).leases;
    const first = leases[0]!;
    await client.heartbeat(
      leases.map((l) => l.leaseId),
      { progress: { [first.leaseId]: [{ offset: 0, fraction: 0.5, message: "half" }] } },
    );
    while (!running.some((indexes) => indexes.includes(first.firstIndex))) await new Promise((resolve) => setTimeout(resolve, 20));
    for (;;) {
      const chunks = chunksOfLeases(leases);
      await client.submitResults(blockReports(chunks.map((chunk) => ({ chunk, result: (chunk.input as number) + 1, console: { lines: [{ level: "log" as const, text: `chunk ${chunk.index}` }] } }))));
      const task = await cc.getTask(job.id);
      if (task.status === "done") break;
      leases = (await client.lease({ max: 6, capabilities: { threads: 3 } })).leases;
    }
    expect(await job.done()).toMatchObject({ status: "done" });
    expect(outputs.sort((a, b) => a.index - b.index)).toEqual([0, 1, 2, 3, 4, 5].map((index) => ({ index, text: `chunk ${index}` })));
    expect(order.at(-1)).toBe("done");
    expect(running.at(-1)).toEqual([]);
  });

  it("cancels a job: done() resolves with the task cancelled", async () => {
    const job = await cc.compute({ start: 0, end: 1000, size: 10 }, (range: { start: number; end: number }) => range.end - range.start);
    expect(job.task.counts.total).toBe(100);
    const ended = job.done();
    const cancelled = await job.cancel();
    expect(cancelled.status).toBe("cancelled");
    expect(await ended).toMatchObject({ status: "cancelled" });
  });
});
