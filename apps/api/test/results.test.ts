import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

/** A strict RFC 4180 reader, enough to check what the server wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(cell), (cell = "");
    else if (ch === "\r" && text[i + 1] === "\n") row.push(cell), rows.push(row), (row = []), (cell = ""), i++;
    else cell += ch;
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
    const leases = (await t.call("POST", "/api/work/lease", { token, body: { max: 3 } })).json.leases;
    await t.call("POST", "/api/work/results", {
      token,
      body: {
        results: [
          { leaseId: leases[0].leaseId, result: { echoed: inputs[0] } },
          { leaseId: leases[1].leaseId, error: { kind: "throw", message: 'bad, "really"' } },
          { leaseId: leases[2].leaseId, result: [3, "x,y"] },
        ],
      },
    });
  });
  afterAll(async () => t?.dispose());

  it("streams CSV with a header and one JSON cell per column", async () => {
    const csv = await t.call("GET", `/api/tasks/${taskId}/results?format=csv`, { token: creator });
    expect(csv.type).toMatch(/^text\/csv/);
    const rows = parseCsv(csv.text);
    expect(rows[0]).toEqual(["index", "status", "input", "result", "error"]);
    expect(rows.slice(1).map(([index, status, input, result, error]) => ({
      index: Number(index),
      status,
      input: JSON.parse(input!),
      result: result ? JSON.parse(result) : null,
      error: error ? JSON.parse(error) : null,
    }))).toEqual([
      { index: 0, status: "done", input: inputs[0], result: { echoed: inputs[0] }, error: null },
      { index: 1, status: "failed", input: 2, result: null, error: { kind: "throw", message: 'bad, "really"' } },
      { index: 2, status: "done", input: "three", result: [3, "x,y"], error: null },
    ]);
  });

  it("refuses an unknown format", async () => {
    expect((await t.call("GET", `/api/tasks/${taskId}/results?format=xml`, { token: creator })).status).toBe(422);
  });
});
