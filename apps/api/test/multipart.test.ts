import { testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, rowCounts, type TestApp } from "./harness.ts";

const code = "export default (x) => x + 1";
// The smallest valid module: magic and version.
const emptyWasm = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

describe.each(testBackends())("multipart task creation on %s", (backend) => {
  let t: TestApp;
  let creator: { token: string };
  beforeAll(async () => {
    t = await openTestApp(backend);
    creator = await t.register("multipart@example.com");
  });
  afterAll(async () => t?.dispose());

  const post = async (form: FormData) => {
    const response = await t.fetcher("/api/tasks", { method: "POST", headers: { authorization: `Bearer ${creator.token}` }, body: form });
    return { status: response.status, type: response.headers.get("content-type") ?? "", json: await response.json() };
  };
  const baseForm = () => {
    const form = new FormData();
    form.set("name", "from files");
    form.set("code", new Blob([code], { type: "text/javascript" }), "work.js");
    form.set("inputs", new Blob([JSON.stringify([1, 2, 3])], { type: "application/json" }), "inputs.json");
    return form;
  };

  it("creates a task from code, wasm and inputs files, with options as fields", async () => {
    const form = baseForm();
    form.set("wasm", new Blob([emptyWasm], { type: "application/wasm" }), "module.wasm");
    form.set("timeoutMs", "5000");
    form.set("priority", "3");
    form.set("requires", JSON.stringify({ webgpu: false }));
    form.set("tolerance", JSON.stringify({ rel: 1e-6 }));
    form.set("start", "true");
    const res = await post(form);
    expect(res.status).toBe(201);
    expect(res.json.task).toMatchObject({ name: "from files", status: "running", timeoutMs: 5000, priority: 3, tolerance: { rel: 1e-6 }, counts: { total: 3 } });
    expect(res.json.task.wasmSha256).toMatch(/^[0-9a-f]{64}$/);
    const { token } = await t.volunteer();
    // Two threads: a new task gives 2 chunks a thread.
    const { leases } = (await t.call("POST", "/api/work/lease", { token, body: { max: 3, capabilities: { threads: 2 } } })).json;
    expect(chunksOfLeases(leases).map((c) => c.input)).toEqual([1, 2, 3]);
    expect((await t.call("GET", `/api/tasks/${res.json.task.id}/code`, { token })).text).toBe(code);
  });

  it("validates the form with the JSON body's rules, storing nothing when it fails", async () => {
    const before = await rowCounts(t);
    const cases: [string, (form: FormData) => void, number][] = [
      ["inputs not JSON", (f) => f.set("inputs", new Blob(["[1, 2"]), "inputs.json"), 400],
      ["inputs not an array", (f) => f.set("inputs", new Blob(['{"a": 1}']), "inputs.json"), 422],
      ["code that does not parse", (f) => f.set("code", new Blob(["export default (x) =>"]), "work.js"), 422],
      ["wasm that is not WebAssembly", (f) => f.set("wasm", new Blob(["not wasm"]), "m.wasm"), 422],
      ["wasm as text", (f) => f.set("wasm", "AGFzbQEAAAA="), 422],
      ["an unknown field", (f) => f.set("surprise", "yes"), 422],
      ["a number that is not", (f) => f.set("timeoutMs", "soon"), 422],
      ["a field twice", (f) => f.append("name", "again"), 422],
      ["no name", (f) => f.delete("name"), 422],
    ];
    for (const [what, change, status] of cases) {
      const form = baseForm();
      change(form);
      const res = await post(form);
      expect(res.status, what).toBe(status);
      expect(res.type, what).toBe("application/problem+json");
    }
    const broken = await t.fetcher("/api/tasks", {
      method: "POST",
      headers: { authorization: `Bearer ${creator.token}`, "content-type": "multipart/form-data; boundary=nope" },
      body: "--other\r\ngarbage",
    });
    expect(broken.status).toBe(400);
    expect(await rowCounts(t)).toEqual(before);
  });

  it("is documented in the OpenAPI document", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json;
    const content = doc.paths["/api/tasks"].post.requestBody.content;
    expect(Object.keys(content)).toEqual(["application/json", "multipart/form-data"]);
    expect(content["multipart/form-data"].schema.properties.wasm.format).toBe("binary");
  });
});
