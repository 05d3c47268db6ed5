// Deep and wide JSON on every route that takes a body (issue 15): a value nested 100,000 levels
// deep used to pass JSON.parse and then fail in JSON.stringify or in Postgres' parser (a 500),
// or be stored and break later readers. Now every such body is a 4xx that names where, and
// changes no row; wide values are answered 2xx or 4xx, never 5xx.
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonTextTooDeep, jsonViolation, maxBodyDepth, maxJsonDepth, maxJsonValueChars } from "../src/lib/json-limits.ts";
import { type CallOptions, type CallResult, openTestApp, rowCounts, type TestApp } from "./harness.ts";

const code = "export default (x) => x";

/** An array nested `depth` levels deep around `inner`, built without recursion. */
function nested(depth: number, inner: unknown = 0): unknown {
  let value = inner;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}
/** The text of `nested(depth)`: JSON.stringify would overflow on the deep ones. */
const nestedText = (depth: number, inner = "0") => `${"[".repeat(depth)}${inner}${"]".repeat(depth)}`;
const nestedObjectText = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

const veryDeep = 100_000;

describe("the JSON limits", () => {
  it("measures depth and size without recursion, and stops at the first violation", () => {
    expect(jsonViolation(nested(maxJsonDepth))).toBeNull();
    expect(jsonViolation(nested(maxJsonDepth + 1))).toMatchObject({ kind: "depth" });
    expect(jsonViolation(JSON.parse(nestedText(1_000_000)))).toMatchObject({ kind: "depth" });
    expect(jsonViolation({ a: [1, { b: nested(maxJsonDepth) }] })).toMatchObject({ kind: "depth", path: "a.1.b.0.0.0.0.0.…(56 more)" });
    expect(jsonViolation(1)).toBeNull();
    expect(jsonViolation("x".repeat(10), { maxChars: 12 })).toBeNull();
    expect(jsonViolation("x".repeat(11), { maxChars: 12 })).toMatchObject({ kind: "size", path: "" });
    // The count is the compact JSON text's length, escapes aside.
    for (const value of [{ a: [1, 2.5, -3e-7, null, true, false, "s"], bb: {}, c: [] }, [[[]]], { "": "" }, []]) {
      const length = JSON.stringify(value).length;
      expect(jsonViolation(value, { maxChars: length }), JSON.stringify(value)).toBeNull();
      expect(jsonViolation(value, { maxChars: length - 1 }), JSON.stringify(value)).toMatchObject({ kind: "size" });
    }
  });

  it("finds deep brackets in text outside strings only", () => {
    expect(jsonTextTooDeep(nestedText(maxJsonDepth))).toBe(-1);
    expect(jsonTextTooDeep(nestedText(maxJsonDepth + 1))).toBe(maxJsonDepth);
    expect(jsonTextTooDeep(nestedObjectText(maxJsonDepth + 1))).toBeGreaterThan(0);
    expect(jsonTextTooDeep(JSON.stringify({ s: "[".repeat(1000) }))).toBe(-1);
    expect(jsonTextTooDeep(JSON.stringify({ s: `\\"${"[".repeat(1000)}` }))).toBe(-1);
    expect(jsonTextTooDeep(`["\\\\", ${nestedText(maxJsonDepth)}]`)).toBe(maxJsonDepth + 6);
  });
});

describe.each(testBackends())("deep and wide JSON on %s", (backend) => {
  let t: TestApp;
  let owner: { token: string; user: { id: string } };
  let volunteer: { token: string };
  let counts: Record<string, number>;
  const seen = { total: 0, server: [] as string[] };

  /** No 5xx ever; a rejected request is problem+json and changes no row count. */
  async function attempt(method: string, path: string, options: CallOptions = {}): Promise<CallResult> {
    const res = await t.call(method, path, options);
    seen.total++;
    const what = `${method} ${path} ${String(options.raw ?? JSON.stringify(options.body)).slice(0, 60)}`;
    if (res.status >= 500) seen.server.push(`${res.status} ${what}: ${res.text.slice(0, 200)}`);
    expect(res.status, `${what}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
    const after = await rowCounts(t);
    if (res.status >= 400) {
      expect(res.type, what).toBe("application/problem+json");
      expect(after, `rows changed by a rejected ${what}`).toEqual(counts);
    }
    counts = after;
    return res;
  }

  const newTask = async (body: Record<string, unknown> = {}) => (await t.call("POST", "/api/tasks", { token: owner.token, body: { name: "target", code, ...body } })).json.task.id as string;

  beforeAll(async () => {
    t = await openTestApp(backend);
    owner = await t.register("deep@example.com");
    volunteer = await t.volunteer();
    counts = await rowCounts(t);
  });
  afterAll(async () => t?.dispose());

  it("refuses deep bodies on every route that takes one, naming where, before anything is stored", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => m !== "get")
        .map((m) => [m.toUpperCase(), path] as const),
    );
    expect(operations.length).toBeGreaterThanOrEqual(15);
    const deepBodies = [
      nestedText(veryDeep),
      nestedObjectText(veryDeep / 4), // 125 KiB: within every route's body limit
      `{"name": "x", "code": ${JSON.stringify(code)}, "inputs": [1, ${nestedText(veryDeep)}]}`,
      `{"surprise": ${nestedText(maxBodyDepth)}}`,
      `{"results": [{"leaseId": "x", "results": [${nestedText(veryDeep)}]}]}`,
    ];
    for (const [method, template] of operations) {
      if (template.endsWith("/inputs")) continue; // NDJSON: below
      const work = template.startsWith("/api/work");
      for (const raw of deepBodies) {
        // Each attempt on its own task: a route that ignored its body would act on it.
        const path = template.replace("{id}", template.includes("{id}") ? await newTask() : "").replace("{action}", "start");
        counts = await rowCounts(t);
        const res = await attempt(method, path, { token: work ? volunteer.token : owner.token, raw });
        expect(res.status, `${method} ${template} ${raw.slice(0, 40)}`).toBe(422);
        expect(res.json.detail, `${method} ${template}`).toMatch(new RegExp(`nested deeper than ${maxBodyDepth} levels`));
      }
    }
    // The problem names the path to the first level too deep.
    const res = await attempt("POST", "/api/tasks", { token: owner.token, raw: `{"name": "x", "code": "c", "inputs": [1, 2, {"a": ${nestedText(veryDeep)}}]}` });
    expect(res.json.errors).toEqual([{ path: "inputs.2.a.0.0.0.0.0.…(60 more)", message: `nested deeper than ${maxBodyDepth} levels of arrays and objects` }]);
  });

  it("refuses a result nested past the limit, so no volunteer can wedge a task's reduce", async () => {
    await t.db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status = 'running'`);
    const reduceCode = "export default (x) => x; export function reduce(rs) { return rs.flat(Infinity).length; }";
    const taskId = await newTask({ code: reduceCode, inputs: [1, 2], start: true });
    counts = await rowCounts(t);
    const { leases } = (await attempt("POST", "/api/work/lease", { token: volunteer.token, body: { max: 2, capabilities: { threads: 1 } } })).json;
    const [block] = leases;
    // 150,000 levels: once accepted, it made every lease of the task's reduce chunk a 500.
    const deep = await attempt("POST", "/api/work/results", { token: volunteer.token, raw: `{"results": [{"leaseId": ${JSON.stringify(block.leaseId)}, "results": [${nestedText(150_000)}, 2]}]}` });
    expect(deep.status).toBe(422);
    // Exactly as deep as the body allows: stored, and reduced like any result.
    const atLimit = nestedText(maxJsonDepth, "1");
    const posted = await attempt("POST", "/api/work/results", { token: volunteer.token, raw: `{"results": [{"leaseId": ${JSON.stringify(block.leaseId)}, "results": [${atLimit}, 2]}]}` });
    expect(posted.json).toEqual({ accepted: 2, rejected: [] });
    const reduce = (await attempt("POST", "/api/work/lease", { token: volunteer.token, body: { max: 1 } })).json.leases[0];
    expect(reduce).toMatchObject({ entry: "reduce", inputs: [[JSON.parse(atLimit), 2]] });
    await attempt("POST", "/api/work/results", { token: volunteer.token, body: { results: [{ leaseId: reduce.leaseId, results: [2] }] } });
    const view = (await t.call("GET", `/api/tasks/${taskId}`, { token: owner.token })).json.task;
    expect(view).toMatchObject({ status: "done", aggregate: { state: "done", value: 2 } });
    counts = await rowCounts(t);
  });

  it("takes task inputs as deep as the limit and refuses one level more, naming the input", async () => {
    const atLimit = await attempt("POST", "/api/tasks", { token: owner.token, raw: `{"name": "deep", "code": ${JSON.stringify(code)}, "start": true, "inputs": [${nestedText(maxJsonDepth)}]}` });
    expect(atLimit.status).toBe(201);
    const deeper = await attempt("POST", "/api/tasks", { token: owner.token, raw: `{"name": "deeper", "code": ${JSON.stringify(code)}, "inputs": [1, ${nestedText(maxJsonDepth + 1)}]}` });
    expect(deeper.status).toBe(422);
    expect(deeper.json.errors).toEqual([{ path: "inputs.1", message: `nested deeper than ${maxJsonDepth} levels of arrays and objects, at 0.0.0.0.0.0.0.0.…(56 more)` }]);
    // An input longer than an NDJSON line may be is refused the same way.
    const long = await attempt("POST", "/api/tasks", { token: owner.token, body: { name: "long", code, inputs: [1, "x".repeat(maxJsonValueChars)] } });
    expect(long.status).toBe(422);
    expect(long.json.errors).toEqual([{ path: "inputs.1", message: `longer than ${maxJsonValueChars} characters of JSON` }]);
    // The input at the limit is leased and served back whole.
    const { leases } = (await t.call("POST", "/api/work/lease", { token: volunteer.token, body: { max: 1 } })).json;
    expect(leases).toHaveLength(1);
    expect(JSON.stringify(leases[0].inputs[0])).toBe(nestedText(maxJsonDepth));
    counts = await rowCounts(t);
  });

  it("refuses deep NDJSON lines by a scan of their text, naming the line, and keeps none of the upload", async () => {
    const id = await newTask();
    counts = await rowCounts(t);
    const upload = (raw: string, offset = 0) => attempt("POST", `/api/tasks/${id}/inputs?offset=${offset}`, { token: owner.token, raw, headers: { "content-type": "application/x-ndjson" } });
    for (const line of [nestedText(veryDeep), nestedObjectText(veryDeep), nestedText(maxJsonDepth + 1), `{"a": ${nestedText(maxJsonDepth)}}`]) {
      const res = await upload(`1\n{"ok": true}\n${line}\n4\n`);
      expect(res.status).toBe(422);
      expect(res.json.errors).toEqual([{ path: "body.line.3", message: `nested deeper than ${maxJsonDepth} levels` }]);
      expect(res.json.detail).toMatch(/^line 3 is nested deeper than 64 levels/);
    }
    // Brackets inside strings are text, not depth; a line at the limit is taken.
    const ok = await upload(`${JSON.stringify({ s: "[".repeat(10_000) })}\n${nestedText(maxJsonDepth)}\n`);
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ total: 2, sealed: false });
    // A line longer than the limit is refused even when it arrives whole in one network chunk.
    const long = await upload(`${JSON.stringify("x".repeat(maxJsonValueChars))}\n`, 2);
    expect(long.status).toBe(413);
    expect(long.json.errors).toEqual([{ path: "body.line.1", message: `longer than ${maxJsonValueChars} characters` }]);
  });

  it("refuses a deep inputs file in a multipart task before turning the form into JSON", async () => {
    for (const [field, text] of [
      ["inputs", `[${nestedText(veryDeep)}]`],
      ["requires", nestedObjectText(veryDeep)],
      ["allowUsers", nestedText(veryDeep)],
      ["range", nestedText(maxBodyDepth)],
    ] as const) {
      const form = new FormData();
      form.set("name", "multipart");
      form.set("code", new Blob([code]), "work.js");
      form.set(field, new Blob([text]), `${field}.json`);
      const response = await t.fetcher("/api/tasks", { method: "POST", headers: { authorization: `Bearer ${owner.token}` }, body: form });
      seen.total++;
      expect(response.status, field).toBe(422);
      const problem = await response.json();
      expect(problem.errors[0].path, field).toMatch(new RegExp(`^${field}(\\.|$)`));
      expect(await rowCounts(t)).toEqual(counts);
    }
  });

  it("answers wide bodies on every body route with 2xx or 4xx", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json as { paths: Record<string, Record<string, unknown>> };
    const manyKeys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(",")}}`;
    const manyItems = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(",")}]`;
    const wideBodies = [
      manyKeys(20_000),
      `{"name": ${manyKeys(20_000)}}`,
      `{"results": ${manyItems(40_000)}}`,
      `{"leaseIds": ${manyItems(40_000)}, "max": ${manyItems(40_000)}}`,
      `{"name": "w", "code": ${JSON.stringify(code)}, "inputs": ${manyItems(200_000)}}`,
      `{"name": "w", "code": ${JSON.stringify(code)}, "inputs": [${manyKeys(50_000)}], "allowUsers": ${manyItems(5_000)}}`,
    ];
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops).filter((m) => m !== "get")) {
        const work = template.startsWith("/api/work");
        for (const raw of wideBodies) {
          const path = template.replace("{id}", template.includes("{id}") ? await newTask() : "").replace("{action}", "start");
          counts = await rowCounts(t);
          const res = await attempt(method.toUpperCase(), path, { token: work ? volunteer.token : owner.token, raw });
          // A validation problem lists a bounded number of issues, not one per key.
          if (res.status === 422) expect(res.text.length, `${method} ${template}`).toBeLessThan(20_000);
        }
      }
    }
  });

  it("never answered with a 5xx", () => {
    expect(seen.server).toEqual([]);
    expect(seen.total).toBeGreaterThan(100);
  });
});
