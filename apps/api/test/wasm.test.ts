// A task's WebAssembly module: checked at upload, stored with its sha256, served to volunteers.
import { createHash } from "node:crypto";
import { testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import wabt from "wabt";
import { openTestApp, type TestApp } from "./harness.ts";

const code = "export default function work(x, ctx) { return ctx.wasm.exports.add(x, 1); }";
const addWat = `(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))`;

async function wat(text: string): Promise<Uint8Array> {
  const module = (await wabt()).parseWat("test.wat", text);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

describe.each(testBackends())("task wasm on %s", (backend) => {
  let t: TestApp;
  let creator: string;
  let module: Uint8Array;

  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = (await t.register("creator@example.com")).token;
    module = await wat(addWat);
  });
  afterAll(async () => t?.dispose());

  const taskCount = async (): Promise<number> => {
    const out: unknown = await t.db.execute(sql`SELECT count(*)::int AS n FROM tasks`);
    const rows = (Array.isArray(out) ? out : (out as { rows: unknown[] }).rows) as { n: number }[];
    return rows[0]!.n;
  };
  const create = (body: Record<string, unknown>) => t.call("POST", "/api/tasks", { token: creator, body: { name: "adds", code, inputs: [1, 2, 3], ...body } });
  const getWasm = (id: string, headers: Record<string, string> = {}) => t.app.request(`/api/tasks/${id}/wasm`, { headers });

  it("stores the module with its sha256 and serves the same bytes to volunteers and the creator", async () => {
    const created = await create({ wasm: base64(module), start: true });
    expect(created.status).toBe(201);
    const task = created.json.task as { id: string; wasmSha256: string };
    expect(task.wasmSha256).toBe(sha256(module));

    const volunteer = (await t.volunteer()).token;
    // Two threads: a new task gives 2 chunks a thread. Every block names the module.
    const leased = await t.call("POST", "/api/work/lease", { token: volunteer, body: { max: 3, capabilities: { threads: 2 } } });
    const blocks = leased.json.leases as { taskId: string; inputs: unknown[]; wasmSha256: string }[];
    expect(blocks.flatMap((block) => block.inputs.map(() => [block.taskId, block.wasmSha256]))).toEqual(Array(3).fill([task.id, sha256(module)]));

    for (const token of [volunteer, creator]) {
      const response = await getWasm(task.id, { authorization: `Bearer ${token}` });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/wasm");
      expect(response.headers.get("etag")).toBe(`"${sha256(module)}"`);
      expect(response.headers.get("cache-control")).toContain("immutable");
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(sha256(bytes)).toBe(sha256(module));
      // The bytes are a module that runs: add(40, 2).
      const { instance } = await WebAssembly.instantiate(bytes);
      expect((instance.exports.add as (a: number, b: number) => number)(40, 2)).toBe(42);
    }
    const again = await getWasm(task.id, { authorization: `Bearer ${volunteer}`, "if-none-match": `"${sha256(module)}"` });
    expect(again.status).toBe(304);
  });

  it("needs a token, and answers 404 for a task without a module or no task at all", async () => {
    const withWasm = (await create({ wasm: base64(module) })).json.task.id as string;
    // Running: a volunteer reads only what it may run (a draft is 403 to it).
    const without = (await create({ start: true })).json.task;
    expect(without.wasmSha256).toBeNull();
    const volunteer = (await t.volunteer()).token;
    const auth = { authorization: `Bearer ${volunteer}` };
    expect((await getWasm(withWasm)).status).toBe(401);
    const none = await getWasm(without.id, auth);
    expect(none.status).toBe(404);
    expect(none.headers.get("content-type")).toBe("application/problem+json");
    expect((await getWasm("0190a000-0000-7000-8000-000000000000", auth)).status).toBe(404);
    expect((await getWasm("not-a-uuid", auth)).status).toBe(404);
  });

  it("refuses bytes that are not a module, text that is not base64 and modules over 16 MiB, storing nothing", async () => {
    const before = await taskCount();
    const cases = [
      base64(new TextEncoder().encode("this is not WebAssembly")),
      base64(module.slice(0, module.length - 3)), // a truncated module
      "not base64 at all!",
      base64(new Uint8Array(16 * 1024 * 1024 + 1)),
    ];
    for (const wasm of cases) {
      const refused = await create({ wasm });
      expect(refused.status).toBe(422);
      expect(refused.type).toBe("application/problem+json");
      expect(refused.json.errors.map((error: { path: string }) => error.path)).toContain("wasm");
    }
    expect(await taskCount()).toBe(before);
  });
});
