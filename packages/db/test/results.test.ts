import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTask, createUser, createVolunteer } from "../src/index.ts";
import { type FinalChunk, finalChunksDownload, finalChunksPage, finalChunksWindow, getTaskForResults, nextFinalIndex, type ResultsFormat, type ResultsTask } from "../src/reads/results.ts";
import { leaseChunks, leaseRef, leaseRequest, openTestDb, submitChunks, type TestDb, taskFixture, testBackends } from "../testing/testing.ts";

// The download format as the API wrote it line by line before the database
// took over: the texts the database builds must equal these byte for byte.
function referenceLine(chunk: FinalChunk, format: ResultsFormat): string {
  const cell = (json: string) => `"${json.replaceAll('"', '""')}"`;
  if (format === "ndjson") {
    return chunk.status === "done"
      ? `{"index":${chunk.index},"input":${chunk.input},"status":"done","result":${chunk.result}}\n`
      : `{"index":${chunk.index},"input":${chunk.input},"status":"failed","error":${JSON.stringify(chunk.error)}}\n`;
  }
  const result = chunk.status === "done" ? cell(chunk.result) : "";
  const error = chunk.status === "failed" ? cell(JSON.stringify(chunk.error)) : "";
  return `${chunk.index},${chunk.status},${cell(chunk.input)},${result},${error}\r\n`;
}

// Quotes, backslashes, escapes JSON must write, control characters, non-ASCII, astral
// characters, separators and CSV's own delimiters.
const awkward = ['say "hi"', "back\\slash", "line\nbreak\ttab\r", "\u0001\u001f\u007f control", "ünïcödé ✓ 𝄞 🎉", "\u2028\u2029", 'a,b;"c"\r\nd', ""];

describe.each(testBackends())("results download text on %s", (backend) => {
  let testDb: TestDb;
  let ownerId: string;
  const db = () => testDb.handle.db;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    ownerId = (await createUser(db(), { email: "owner@example.com", passwordHash: "x", firstIsAdmin: true }))!.id;
  });
  afterAll(async () => testDb?.dispose());

  /** Leases every chunk of the running tasks, then reports `outcome(index)` for each: a result, an error, or nothing (it stays leased). */
  async function complete(outcome: (index: number) => { result: unknown } | { error: string } | null) {
    const volunteerId = (await createVolunteer(db(), { name: "v", userId: null })).id;
    for (;;) {
      const leased = await leaseChunks(db(), leaseRequest(volunteerId, { max: 500, threads: 500 }));
      if (leased.length === 0) return;
      const results = [];
      const errors = [];
      for (const chunk of leased) {
        const out = outcome(chunk.index);
        const base = { ...leaseRef(chunk), cpuMs: 1 };
        if (out && "result" in out) results.push({ ...base, result: JSON.stringify(out.result) });
        else if (out) errors.push({ ...base, kind: "throw", message: out.error });
      }
      await submitChunks(db(), { volunteerId, shard: 0, results, errors });
    }
  }

  /** The text of fixed windows of `window` indices, each cut at `budgetBytes`. */
  async function textInWindows(task: ResultsTask, window: number, budgetBytes: number, format: ResultsFormat): Promise<string> {
    let text = "";
    for (let after = -1; after < task.total - 1; ) {
      const part = await finalChunksWindow(db(), task, after, after + window, format, budgetBytes);
      expect(part.through).toBeGreaterThan(after);
      text += part.text;
      after = part.through;
    }
    return text;
  }

  async function download(task: ResultsTask, format: ResultsFormat, options: { budgetBytes?: number; maxWindow?: number } = {}): Promise<string[]> {
    const texts: string[] = [];
    for await (const text of finalChunksDownload(db(), task, format, options)) texts.push(text);
    return texts;
  }

  async function expectReferenceText(taskId: string, finalCount: number) {
    const task = (await getTaskForResults(db(), taskId))!;
    const chunks = await finalChunksPage(db(), task, -1, task.total + 1);
    expect(chunks).toHaveLength(finalCount);
    for (const format of ["ndjson", "csv"] as const) {
      const reference = chunks.map((chunk) => referenceLine(chunk, format)).join("");
      for (const window of [1, 3, 10, task.total]) expect(await textInWindows(task, window, 1 << 20, format)).toBe(reference);
      // A budget of one byte: one line per query.
      expect(await textInWindows(task, task.total, 1, format)).toBe(reference);
      expect((await download(task, format)).join("")).toBe(reference);
      expect((await download(task, format, { budgetBytes: 300, maxWindow: 7 })).join("")).toBe(reference);
    }
  }

  it("writes NDJSON and CSV exactly as line-by-line JSON would, in any window size", async () => {
    const items = [...awkward, ...awkward.map((text) => ({ text, nested: [text, 1.5, null, true] })), 0, -0.25, 1e21, null, [], {}];
    const taskId = await createTask(db(), taskFixture(ownerId, { maxAttempts: 1, inputs: { kind: "array", items } }));
    await complete((index) => (index % 5 === 4 ? null : index % 3 === 1 ? { error: awkward[index % awkward.length]! } : { result: { echoed: items[index], text: awkward[index % awkward.length] } }));
    const finals = items.filter((_, index) => index % 5 !== 4).length;
    await expectReferenceText(taskId, finals);
  });

  it("writes the computed inputs of range tasks exactly, for large and negative ranges", async () => {
    for (const range of [
      { start: 2 ** 52, end: 2 ** 52 + 1000, step: 3, size: 7 },
      { start: -1000, end: 7, step: 1, size: 40 },
    ]) {
      const taskId = await createTask(db(), taskFixture(ownerId, { maxAttempts: 1, inputs: { kind: "range", ...range } }));
      await complete((index) => (index === 2 ? null : index % 4 === 3 ? { error: "boom" } : { result: index }));
      const { total } = (await getTaskForResults(db(), taskId))!;
      await expectReferenceText(taskId, total - 1);
    }
  });

  it("finds the next final chunk across unfinished stretches, and none after the last", async () => {
    const taskId = await createTask(db(), taskFixture(ownerId, { maxAttempts: 1, inputs: { kind: "array", items: Array.from({ length: 40 }, (_, i) => i) } }));
    const finals = [7, 8, 30];
    await complete((index) => (!finals.includes(index) ? null : index === 8 ? { error: "no" } : { result: index }));
    const task = (await getTaskForResults(db(), taskId))!;
    expect(await nextFinalIndex(db(), task, -1)).toBe(7);
    expect(await nextFinalIndex(db(), task, 7)).toBe(8);
    expect(await nextFinalIndex(db(), task, 8)).toBe(30);
    expect(await nextFinalIndex(db(), task, 30)).toBeNull();
    expect(await finalChunksWindow(db(), task, 8, 29, "ndjson", 1 << 20)).toEqual({ text: "", through: 29 });
    expect(await finalChunksWindow(db(), task, 29, 1000, "ndjson", 1 << 20)).toEqual({ text: '{"index":30,"input":30,"status":"done","result":30}\n', through: 39 });
    // Windows of 2 indices: the empty stretches between are skipped, not walked.
    expect(await download(task, "ndjson", { maxWindow: 2 })).toEqual([
      '{"index":7,"input":7,"status":"done","result":7}\n{"index":8,"input":8,"status":"failed","error":{"kind":"throw","message":"no"}}\n',
      '{"index":30,"input":30,"status":"done","result":30}\n',
    ]);
  });

  it("keeps each text near its byte budget when results are large", async () => {
    const big = "x".repeat(100_000);
    const taskId = await createTask(db(), taskFixture(ownerId, { inputs: { kind: "array", items: Array.from({ length: 30 }, (_, i) => i) } }));
    await complete((index) => ({ result: [index, big] }));
    const task = (await getTaskForResults(db(), taskId))!;
    const budgetBytes = 250_000;
    const texts = await download(task, "csv", { budgetBytes });
    const lineBytes = 100_100;
    for (const text of texts) expect(text.length).toBeLessThan(budgetBytes + lineBytes);
    expect(texts.length).toBeGreaterThanOrEqual(Math.ceil((30 * lineBytes) / (budgetBytes + lineBytes)));
    expect(
      texts
        .join("")
        .split("\r\n")
        .slice(0, -1)
        .map((line) => JSON.parse(line.split(",").slice(3, -1).join(",").slice(1, -1).replaceAll('""', '"'))[0]),
    ).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});
