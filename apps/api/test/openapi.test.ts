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
    const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
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

  it("serves an API reference page that reads that document", async () => {
    const res = await t.call("GET", "/api/docs");
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/text\/html/);
    expect(res.text).toContain("/api/openapi.json");
  });
});
