import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

describe("OpenAPI document and reference page", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp("pglite");
  });
  afterAll(async () => t?.dispose());

  it("serves an OpenAPI 3.1 document of every route, from the validating schemas", async () => {
    const res = await t.call("GET", "/api/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("CrowdCompute API");
    const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`));
    for (const route of [
      "POST /api/auth/register",
      "POST /api/auth/login",
      "POST /api/volunteers",
      "POST /api/tasks",
      "GET /api/tasks",
      "GET /api/tasks/{id}",
      "GET /api/tasks/{id}/results",
      "GET /api/tasks/{id}/events",
      "POST /api/work/lease",
      "POST /api/work/results",
      "POST /api/keys",
      "GET /api/keys",
      "DELETE /api/keys/{id}",
      "GET /api/stats",
      "GET /api/stats/events",
      "GET /api/leaderboard",
      "POST /api/tickets",
      "GET /api/health",
    ]) {
      expect(routes).toContain(route);
    }
    // The request schema is the validator's: strict objects say so, limits appear.
    const register = doc.paths["/api/auth/register"].post.requestBody.content["application/json"].schema;
    expect(register.additionalProperties).toBe(false);
    expect(register.properties.password.minLength).toBe(8);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.schemas.Task.properties.counts).toBeDefined();
  });

  it("groups every operation under one resource, in a fixed order", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json as { paths: Record<string, Record<string, { tags?: string[] }>>; tags: { name: string }[] };
    const tagOf = (method: string, path: string) => doc.paths[path]![method]!.tags;
    for (const operations of Object.values(doc.paths)) for (const operation of Object.values(operations)) expect(operation.tags).toHaveLength(1);
    expect(doc.tags.map((tag) => tag.name)).toEqual(["Accounts", "API keys", "Tasks", "Live updates", "Volunteers", "Statistics", "Administration", "Server"]);
    expect(tagOf("post", "/api/auth/login")).toEqual(["Accounts"]);
    expect(tagOf("get", "/api/tasks/{id}/chunks")).toEqual(["Tasks"]);
    expect(tagOf("get", "/api/tasks/{id}/code")).toEqual(["Volunteers"]);
    expect(tagOf("post", "/api/work/lease")).toEqual(["Volunteers"]);
    expect(tagOf("get", "/api/tasks/{id}/events")).toEqual(["Live updates"]);
    expect(tagOf("get", "/api/leaderboard")).toEqual(["Statistics"]);
    expect(tagOf("get", "/api/health")).toEqual(["Server"]);
  });

  it("says of every operation who may call it and what its errors look like", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json as {
      components: { securitySchemes: Record<string, { type: string; in?: string }>; schemas: Record<string, { properties?: Record<string, unknown> }> };
      paths: Record<string, Record<string, { security?: Record<string, string[]>[]; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>>;
    };
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["apiKey", "bearer", "ticket"]);
    expect(doc.components.securitySchemes.ticket).toMatchObject({ type: "apiKey", in: "query" });
    expect(Object.keys(doc.components.schemas.Problem!.properties!).sort()).toEqual(["detail", "errors", "status", "title", "type"]);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const what = `${method.toUpperCase()} ${path}`;
        expect(operation.security, what).toBeDefined();
        for (const status of ["500", "503"]) expect(operation.responses[status], `${what} ${status}`).toBeDefined();
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) >= 400) expect(response.content?.["application/problem+json"]?.schema.$ref, `${what} ${status}`).toBe("#/components/schemas/Problem");
        }
        if (operation.security!.length > 0) expect(operation.responses["401"], what).toBeDefined();
      }
    }
    // Roles of the bearer JWT, an API key, or a stream ticket, as each operation takes them.
    expect(doc.paths["/api/tasks"]!.post!.security).toEqual([{ bearer: ["creator", "admin"] }, { apiKey: [] }]);
    expect(doc.paths["/api/keys"]!.post!.security).toEqual([{ bearer: ["creator", "admin"] }]);
    expect(doc.paths["/api/work/lease"]!.post!.security).toEqual([{ bearer: ["volunteer"] }]);
    expect(doc.paths["/api/tasks/{id}/events"]!.get!.security).toContainEqual({ ticket: [] });
    expect(doc.paths["/api/auth/login"]!.post!.security).toEqual([]);
    expect(doc.paths["/api/tasks/{id}"]!.get!.responses["404"]).toBeDefined();
  });

  it("titles every operation with a short summary and keeps the prose in its description", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json;
    const operations = Object.entries(doc.paths as Record<string, Record<string, { summary?: string }>>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, summary: op.summary ?? "" })),
    );
    const bad = operations.filter(({ summary }) => summary.length === 0 || summary.length > 50 || summary.includes("`"));
    expect(bad).toEqual([]);
  });

  it("describes the NDJSON upload: a required offset and an NDJSON body", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json;
    const append = doc.paths["/api/tasks/{id}/inputs"].post;
    const offset = append.parameters.find((p: { name: string }) => p.name === "offset");
    expect(offset).toMatchObject({ in: "query", required: true });
    expect(Object.keys(append.requestBody.content)).toEqual(["application/x-ndjson"]);
    expect(append.requestBody.required).toBe(true);
    expect(append.responses["415"]).toBeDefined();
  });

  it("routes each POST under a task to its own operation, not to the lifecycle's {action}", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json as { paths: Record<string, Record<string, unknown>> };
    const named = Object.keys(doc.paths).filter((path) => /^\/api\/tasks\/\{id\}\/[a-z-]+$/.test(path) && doc.paths[path]!.post);
    expect(named.length).toBeGreaterThanOrEqual(3);
    const id = "00000000-0000-7000-8000-000000000000";
    for (const path of named) {
      // Unauthenticated: its own route refuses the caller or its query; the lifecycle route would refuse the action.
      const res = await t.call("POST", path.replace("{id}", id), { body: {} });
      expect([401, 422], path).toContain(res.status);
      expect(res.json.detail, path).not.toMatch(/\baction\b/);
    }
    const unknown = await t.call("POST", `/api/tasks/${id}/explode`, { body: {} });
    expect([unknown.status, unknown.json.detail]).toEqual([422, expect.stringMatching(/\baction\b/)]);
  });

  it("serves an API reference page that reads that document", async () => {
    const res = await t.call("GET", "/api/docs");
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/text\/html/);
    expect(res.text).toContain("/api/openapi.json");
    // Nothing of the vendor's: no telemetry, no fonts or scripts from elsewhere on Node, no toolbar or agent.
    expect(res.text).toContain('"telemetry":false');
    expect(res.text).toContain('"withDefaultFonts":false');
    expect(res.text).toContain('"showDeveloperTools":"never"');
  });
});
