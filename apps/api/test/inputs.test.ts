import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases, type LeasedBlock } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

describe.each(testBackends())("NDJSON inputs on %s", (backend) => {
  let t: TestApp;
  let creator: string;

  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = (await t.register("ndjson@example.com")).token;
  });
  afterAll(async () => t?.dispose());

  const newTask = async () => (await t.call("POST", "/api/tasks", { token: creator, body: { name: "streamed", code: "export default (x) => x", start: true } })).json.task;
  // A new task gives 2 chunks a thread: ask with enough threads for `max`.
  const lease = async (token: string, max: number, extra: Record<string, unknown> = {}) =>
    (await t.call("POST", "/api/work/lease", { token, body: { max, capabilities: { threads: Math.ceil(max / 2) }, ...extra } })).json.leases as LeasedBlock[];
  const reportInputs = async (token: string, leases: LeasedBlock[], result: (input: unknown) => unknown) => {
    const results = leases.map((b) => ({ leaseId: b.leaseId, results: b.inputs.map(result) }));
    return (await t.call("POST", "/api/work/results", { token, body: { results } })).json;
  };
  const upload = (id: string, query: string, raw: string) => t.call("POST", `/api/tasks/${id}/inputs?${query}`, { token: creator, raw, headers: { "content-type": "application/x-ndjson" } });

  it("appends in order, refuses a repeated offset, and finishes only once sealed", async () => {
    const task = await newTask();
    expect(task).toMatchObject({ sealed: false, counts: { total: 0 } });
    expect((await upload(task.id, "offset=0", '{"n":0}\n{"n":1}\n\n{"n":2}\n')).json).toEqual({ total: 3, sealed: false });
    // A retried upload of the same part is refused, and names where to resume.
    const retried = await upload(task.id, "offset=0", '{"n":0}\n');
    expect(retried.status).toBe(409);
    expect(retried.json.detail).toMatch(/offset=3/);

    // Compute everything uploaded so far: the task must stay running, since more may come.
    const { token } = await t.volunteer();
    const leases = await lease(token, 64);
    expect(chunksOfLeases(leases).map((c) => c.input)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(await reportInputs(token, leases, (input) => input)).toEqual({ accepted: 3, rejected: [] });
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task.status).toBe("running");

    expect((await upload(task.id, "offset=3&seal=true", '{"n":3}')).json).toEqual({ total: 4, sealed: true });
    expect((await upload(task.id, "offset=4", '{"n":4}\n')).status).toBe(409);
    const more = await lease(token, 64);
    expect(chunksOfLeases(more).map((c) => c.index)).toEqual([3]);
    expect(await reportInputs(token, more, () => "last")).toEqual({ accepted: 1, rejected: [] });
    const done = (await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task;
    expect(done).toMatchObject({ status: "done", sealed: true, counts: { total: 4, done: 4 } });
    const lines = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator })).text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3]);
  });

  it("says offset is required, refuses a JSON body with 415, and stores nothing from either", async () => {
    const task = await newTask();
    const missing = await upload(task.id, "seal=true", '{"n":0}\n');
    expect(missing.status).toBe(422);
    expect(missing.json.detail ?? JSON.stringify(missing.json.errors)).toMatch(/offset is required/);
    expect((await upload(task.id, "offset=-1", '{"n":0}\n')).status).toBe(422);
    const array = await t.call("POST", `/api/tasks/${task.id}/inputs?offset=0`, { token: creator, body: [{ n: 0 }, { n: 1 }] });
    expect(array.status).toBe(415);
    expect(array.type).toContain("application/problem+json");
    expect(array.json.detail).toMatch(/one JSON value per line/);
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task).toMatchObject({ sealed: false, counts: { total: 0 } });
    // Plain text is NDJSON enough.
    const plain = await t.call("POST", `/api/tasks/${task.id}/inputs?offset=0`, { token: creator, raw: "1\n2\n", headers: { "content-type": "text/plain" } });
    expect(plain.json).toEqual({ total: 2, sealed: false });
  });

  const otherRunningTasks = async (keep: string): Promise<string[]> =>
    (await t.call("GET", "/api/tasks", { token: creator })).json.items.filter((x: { id: string; status: string }) => x.id !== keep && x.status === "running").map((x: { id: string }) => x.id);

  it("stores nothing from an upload with a bad line, and says which line", async () => {
    const task = await newTask();
    const bad = await upload(task.id, "offset=0", '{"ok":1}\n{"ok":2}\n{broken\n');
    expect(bad.status).toBe(422);
    expect(bad.type).toBe("application/problem+json");
    expect(bad.json.detail).toMatch(/line 3/);
    expect((await upload(task.id, "offset=0", '"fine"\n')).json).toEqual({ total: 1, sealed: false });
  });

  it("names a bad line past the first insert batch, counting blank lines, and keeps lines as given", async () => {
    const task = await newTask();
    // 7,000 lines, every 100th blank: more than one batch; line 6,543 is broken.
    const lines = Array.from({ length: 7000 }, (_, i) => (i % 100 === 99 ? "" : `{"n":${i}}`));
    lines[6542] = '{"n": oops}';
    const bad = await upload(task.id, "offset=0", lines.join("\n"));
    expect(bad.status).toBe(422);
    expect(bad.json.detail).toMatch(/^line 6543 is not JSON/);
    expect((await t.call("GET", `/api/tasks/${task.id}`, { token: creator })).json.task.counts.total).toBe(0);

    // CRLF line ends and spaces around a value are fine; the value's own spacing is kept.
    expect((await upload(task.id, "offset=0&seal=true", '{"n": 1}\r\n  [1, 2]  \r\n"x"')).json).toEqual({ total: 3, sealed: true });
    const { token } = await t.volunteer();
    const leases = await lease(token, 8, { exclude: { tasks: await otherRunningTasks(task.id) } });
    expect(chunksOfLeases(leases).map((c) => c.input)).toEqual([{ n: 1 }, [1, 2], "x"]);
    expect(await reportInputs(token, leases, () => 0)).toEqual({ accepted: 3, rejected: [] });
    const download = (await t.call("GET", `/api/tasks/${task.id}/results`, { token: creator })).text.trim().split("\n");
    expect(download.map((line) => JSON.parse(line).input)).toEqual([{ n: 1 }, [1, 2], "x"]);
  });

  it("only takes uploads for the owner's NDJSON tasks", async () => {
    const task = await newTask();
    const other = (await t.register("intruder@example.com")).token;
    expect((await t.call("POST", `/api/tasks/${task.id}/inputs?offset=0`, { token: other, raw: "1\n" })).status).toBe(403);
    const arrayTask = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "a", code: "export default (x) => x", inputs: [1] } })).json.task;
    expect((await upload(arrayTask.id, "offset=1", "2\n")).status).toBe(409);
    expect((await upload(task.id, "offset=-1", "2\n")).status).toBe(422);
    expect((await upload("01900000-0000-7000-8000-000000000000", "offset=0", "2\n")).status).toBe(404);
  });
});
