// The OpenAPI document tells the truth about what the SDK sends and reads: a client generated
// from /api/openapi.json by openapi-typescript, as any third party would make one, must accept
// every request body the SDK builds and give what the SDK's types promise. A route whose schema
// drifts from the contract the SDK is typed by (a renamed field, a new required one, a response
// that lost a member) fails the type check below.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const require = createRequire(import.meta.url);

// Each SDK call's body must be assignable to the route's request body, and each route's answer
// to the type the SDK returns. `Req`/`Res` read the generated `paths`.
const check = (sdk: string) => `
import type { paths } from "./api.js";
import type * as sdk from ${JSON.stringify(sdk)};

type Req<P extends keyof paths, M extends keyof paths[P]> = NonNullable<paths[P][M] extends { requestBody?: infer B } ? B : never> extends { content: { "application/json": infer J } } ? J : never;
// The document cannot say that a member of any JSON value (a chunk's \`input\`, a result) is always
// present: a schema that takes anything takes \`undefined\` too, so the generator makes it optional.
type UnknownKeys<T> = { [K in keyof T]-?: unknown extends T[K] ? K : never }[keyof T];
type Present<T> = T extends readonly (infer E)[]
  ? Present<E>[]
  : T extends object
    ? { [K in keyof T as K extends UnknownKeys<T> ? never : K]: Present<T[K]> } & { [K in UnknownKeys<T>]-?: unknown }
    : T;
type Res<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends { responses: infer R }
  ? S extends keyof R ? (R[S] extends { content: { "application/json": infer J } } ? Present<J> : never) : never
  : never;
type Err<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends { responses: infer R }
  ? S extends keyof R ? (R[S] extends { content: { "application/problem+json": infer J } } ? J : never) : never
  : never;

// What the SDK sends (packages/sdk/src/client.ts) is what the routes take.
export const sends = {
  register: (email: string, password: string, name?: string): Req<"/api/auth/register", "post"> => (name === undefined ? { email, password } : { email, password, name }),
  login: (email: string, password: string): Req<"/api/auth/login", "post"> => ({ email, password }),
  createVolunteer: (name: string): Req<"/api/volunteers", "post"> => ({ name }),
  createTask: (task: sdk.NewTask): Req<"/api/tasks", "post"> => task,
  cloneTask: (change: sdk.CloneChanges): Req<"/api/tasks/{id}/clone", "post"> => change,
  lease: (request: sdk.LeaseRequest): Req<"/api/work/lease", "post"> => request,
  submitResults: (reports: sdk.BlockReport[], next?: sdk.LeaseRequest): Req<"/api/work/results", "post"> => (next ? { results: reports, next } : { results: reports }),
  heartbeat: (request: sdk.HeartbeatRequest): Req<"/api/work/heartbeat", "post"> => request,
  release: (leaseIds: string[]): Req<"/api/work/release", "post"> => ({ leaseIds }),
  renameVolunteer: (name: string): Req<"/api/volunteers/me", "patch"> => ({ name }),
  setDisplayName: (name: string): Req<"/api/auth/me", "patch"> => ({ name }),
  createApiKey: (name: string): Req<"/api/keys", "post"> => ({ name }),
};

// What the routes answer is what the SDK's types say it reads.
export const reads = {
  session: (r: Res<"/api/auth/login", "post", 200>): sdk.Session => r,
  registered: (r: Res<"/api/auth/register", "post", 201>): sdk.Session => r,
  volunteer: (r: Res<"/api/volunteers", "post", 201>): { token: string; volunteer: sdk.Volunteer } => r,
  created: (r: Res<"/api/tasks", "post", 201>): sdk.Task => r.task,
  task: (r: Res<"/api/tasks/{id}", "get", 200>): sdk.Task => r.task,
  tasks: (r: Res<"/api/tasks", "get", 200>): { items: sdk.Task[]; nextCursor: string | null } => r,
  lifecycle: (r: Res<"/api/tasks/{id}/{action}", "post", 200>): sdk.Task => r.task,
  retryFailed: (r: Res<"/api/tasks/{id}/retry-failed", "post", 200>): { task: sdk.Task; reopened: number } => r,
  clone: (r: Res<"/api/tasks/{id}/clone", "post", 201>): sdk.Task => r.task,
  chunks: (r: Res<"/api/tasks/{id}/chunks", "get", 200>): { items: sdk.Chunk[]; nextCursor: string | null } => r,
  throughput: (r: Res<"/api/tasks/{id}/throughput", "get", 200>): sdk.Throughput => r,
  summary: (r: Res<"/api/tasks/{id}/summary", "get", 200>): sdk.TaskSummary => r,
  appended: (r: Res<"/api/tasks/{id}/inputs", "post", 200>): { total: number; sealed: boolean } => r,
  lease: (r: Res<"/api/work/lease", "post", 200>): sdk.LeaseResponse => r,
  results: (r: Res<"/api/work/results", "post", 200>): sdk.ResultsResponse => r,
  heartbeat: (r: Res<"/api/work/heartbeat", "post", 200>): sdk.HeartbeatResponse => r,
  release: (r: Res<"/api/work/release", "post", 200>): sdk.ReleaseResponse => r,
  figures: (r: Res<"/api/volunteers/me", "get", 200>): sdk.VolunteerFigures => r,
  apiKey: (r: Res<"/api/keys", "post", 201>): { key: string; apiKey: sdk.ApiKey } => r,
  apiKeys: (r: Res<"/api/keys", "get", 200>): sdk.ApiKey[] => r.items,
  stats: (r: Res<"/api/stats", "get", 200>): sdk.SiteStats => r,
  leaderboard: (r: Res<"/api/leaderboard", "get", 200>): sdk.LeaderboardEntry[] => r.items,
  ticket: (r: Res<"/api/tickets", "post", 201>): sdk.StreamTicket => r,
  accounts: (r: Res<"/api/admin/users", "get", 200>): { items: sdk.Account[]; nextCursor: string | null } => r,
  config: (r: Res<"/api/config", "get", 200>): { sandboxOrigin: string } => r,
  problem: (p: Err<"/api/tasks/{id}", "get", 404>): sdk.Problem => p,
};
`;

describe("a client generated from the OpenAPI document", () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    t = await openTestApp("pglite");
    dir = mkdtempSync(join(tmpdir(), "cc-openapi-client-"));
  });
  afterAll(async () => {
    await t?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("type-checks against every request the SDK sends and every answer it reads", async () => {
    const document = (await t.call("GET", "/api/openapi.json")).json;
    // defaultNonNullable off: a member with a default is one a request may leave out.
    writeFileSync(join(dir, "api.d.ts"), astToString(await openapiTS(document, { defaultNonNullable: false })));
    writeFileSync(join(dir, "check.ts"), check(join(repo, "packages/sdk/src/index.ts")));
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2023",
          lib: ["ES2023", "DOM", "DOM.Iterable"],
          module: "ESNext",
          moduleResolution: "Bundler",
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          typeRoots: [join(repo, "node_modules/@types")],
          types: ["node"],
        },
        files: ["check.ts"],
      }),
    );
    let output = "";
    try {
      execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(dir, "tsconfig.json")], { cwd: dir, encoding: "utf8" });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? error);
    }
    expect(output).toBe("");
  }, 120_000);
});
