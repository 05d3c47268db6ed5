import { testBackends } from "@crowdcompute/db/testing";
import { ApiError, chunksOfLeases, createClient, type LeasedBlock } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, rowCounts, type TestApp } from "./harness.ts";

describe.each(testBackends())("GET /api/tasks/:id/chunks on %s", (backend) => {
  let t: TestApp;
  let admin: string;
  let creator: string;
  let stranger: string;
  let retried: string; // chunks 0 and 2 done, 1 failed after two errors, 3 leased, 4 and 5 pending
  let replicated: string; // replication 2: chunk 0 done by two agreeing copies, chunk 1 split
  let firstVolunteer: { token: string; id: string };

  const code = "export default (x) => x";
  const chunks = (taskId: string, query = "", token = creator) => t.call("GET", `/api/tasks/${taskId}/chunks${query}`, { token });
  // A new task gives 2 chunks a thread: ask with enough threads for `max`.
  const lease = async (token: string, max: number) => (await t.call("POST", "/api/work/lease", { token, body: { max, capabilities: { threads: Math.ceil(max / 2) } } })).json.leases as LeasedBlock[];
  const blocksOf = (blocks: LeasedBlock[]) => blocks.map((b) => [b.firstIndex, b.inputs]);
  const report = async (token: string, results: unknown[]) => {
    const posted = await t.call("POST", "/api/work/results", { token, body: { results } });
    expect(posted.status).toBe(200);
  };
  const namedVolunteer = async (name: string | null, userToken?: string) => {
    const res = await t.call("POST", "/api/volunteers", { body: name === null ? {} : { name }, ...(userToken ? { token: userToken } : {}) });
    return { token: res.json.token as string, id: res.json.volunteer.id as string };
  };

  beforeAll(async () => {
    t = await openTestApp(backend);
    admin = (await t.register("chunks-admin@example.com")).token; // the first user is the admin
    creator = (await t.register("chunks-creator@example.com")).token;
    stranger = (await t.register("chunks-stranger@example.com")).token;

    retried = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "retried", code, inputs: [10, 20, 30, 40, 50, 60], maxAttempts: 2, start: true } })).json.task.id;
    firstVolunteer = await namedVolunteer("first volunteer");
    const second = await namedVolunteer("second volunteer");
    const [block] = await lease(firstVolunteer.token, 3);
    expect(blocksOf([block!])).toEqual([[0, [10, 20, 30]]]);
    await report(firstVolunteer.token, [
      { leaseId: block!.leaseId, offset: 0, results: [100], errors: [{ offset: 1, kind: "throw", message: "bad 1" }] },
      { leaseId: block!.leaseId, offset: 2, results: [300] },
    ]);
    // The failed chunk comes back alone, before the fresh chunk 3.
    const again = await lease(second.token, 2);
    expect(blocksOf(again)).toEqual([
      [1, [20]],
      [3, [40]],
    ]);
    await report(second.token, [{ leaseId: again[0]!.leaseId, errors: [{ offset: 0, kind: "timeout", message: "bad 2" }] }]);
    // Paused: no more leases from it, and chunk 3's lease still counts as out.
    expect((await t.call("POST", `/api/tasks/${retried}/pause`, { token: creator })).status).toBe(200);

    replicated = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "replicated", code, inputs: [7, 8], replication: 2, quorum: 2, start: true } })).json.task.id;
    const firsts = await lease(firstVolunteer.token, 2);
    expect(chunksOfLeases(firsts).map((c) => c.index)).toEqual([0, 1]);
    await report(
      firstVolunteer.token,
      firsts.map((b) => ({ leaseId: b.leaseId, results: b.inputs.map((_, k) => (b.firstIndex + k === 0 ? 14 : 16)) })),
    );
    // The creator's own volunteer is trusted for its own tasks: with it, two agreeing copies settle a chunk.
    const own = await namedVolunteer(null, creator);
    const copies = await lease(own.token, 2);
    expect(chunksOfLeases(copies).map((c) => c.index)).toEqual([0, 1]);
    await report(
      own.token,
      copies.map((b) => ({ leaseId: b.leaseId, results: b.inputs.map((_, k) => (b.firstIndex + k === 0 ? 14 : 99)) })),
    );
  });
  afterAll(async () => t?.dispose());

  it("lists every chunk with its status, attempts and last error", async () => {
    const res = await chunks(retried);
    expect(res.status).toBe(200);
    expect(res.json.nextCursor).toBeNull();
    expect(res.json.items.map((c: { index: number; status: string }) => [c.index, c.status])).toEqual([
      [0, "done"],
      [1, "failed"],
      [2, "done"],
      [3, "leased"],
      [4, "pending"],
      [5, "pending"],
    ]);
    expect(res.json.items[1]).toEqual({
      index: 1,
      input: 20,
      status: "failed",
      attempts: 2,
      expiries: 0,
      votes: [],
      copiesNeeded: null,
      waitingFor: null,
      lastError: { kind: "timeout", message: "bad 2" },
      progress: null,
      checkpointAt: null,
      console: null,
    });
    expect(res.json.items[0]).toEqual({
      index: 0,
      input: 10,
      status: "done",
      attempts: null,
      expiries: null,
      votes: [],
      copiesNeeded: null,
      waitingFor: null,
      lastError: null,
      progress: null,
      checkpointAt: null,
      console: null,
    });
    expect(res.json.items[4]).toEqual({
      index: 4,
      input: 50,
      status: "pending",
      attempts: 0,
      expiries: 0,
      votes: [],
      copiesNeeded: null,
      waitingFor: null,
      lastError: null,
      progress: null,
      checkpointAt: null,
      console: null,
    });
  });

  it("pages with the cursor, filtered or not", async () => {
    const pages = async (query: string) => {
      const seen: number[][] = [];
      const cursors: (string | null)[] = [];
      for (let cursor: string | null = ""; cursor !== null; ) {
        const res = await chunks(retried, `?limit=2${query}${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.status).toBe(200);
        seen.push(res.json.items.map((c: { index: number }) => c.index));
        cursor = res.json.nextCursor;
        cursors.push(cursor);
      }
      return { seen, cursors };
    };
    expect(await pages("")).toEqual({
      seen: [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
      cursors: ["1", "3", null],
    });
    expect((await pages("&status=done")).seen).toEqual([[0, 2]]);
    expect((await pages("&status=pending")).seen).toEqual([[4, 5]]);
    const one = async (status: string) => (await chunks(retried, `?status=${status}`)).json.items.map((c: { index: number }) => c.index);
    expect(await one("failed")).toEqual([1]);
    expect(await one("leased")).toEqual([3]);
    expect(await one("voting")).toEqual([]);
    expect((await chunks(retried, "?status=pending&limit=1&cursor=4")).json).toMatchObject({ items: [{ index: 5 }], nextCursor: null });
  });

  it("shows each copy of a replicated chunk: the volunteer's name, the hash prefix, whether it agrees", async () => {
    const res = await chunks(replicated);
    expect(res.status).toBe(200);
    const [done, split] = res.json.items;
    expect(done).toMatchObject({ index: 0, input: 7, status: "done" });
    expect(done.votes.map((v: { volunteer: { name: string }; agrees: boolean }) => [v.volunteer.name, v.agrees])).toEqual([
      ["first volunteer", true],
      ["anonymous volunteer", true],
    ]);
    expect(done.votes[0].volunteer.id).toBe(firstVolunteer.id);
    expect(done.votes[0].hashPrefix).toMatch(/^[0-9a-f]{12}$/);
    expect(done.votes[0].hashPrefix).toBe(done.votes[1].hashPrefix);
    expect(Number.isNaN(Date.parse(done.votes[0].at))).toBe(false);
    expect(split).toMatchObject({ index: 1, status: "voting", attempts: 0, lastError: null });
    expect(split.votes.map((v: { agrees: boolean | null }) => v.agrees)).toEqual([null, null]);
    expect(split.votes[0].hashPrefix).not.toBe(split.votes[1].hashPrefix);
    // The disagreement asks for one more copy than the two the task replicates.
    expect([done.copiesNeeded, split.copiesNeeded]).toEqual([null, 3]);
    // What it waits for: one more copy agreeing with either side (one of them is the owner's own, trusted on its task).
    expect([done.waitingFor, split.waitingFor]).toEqual([null, { reason: "moreCopies", agreeing: 1, moreAgreeing: 1, copiesOut: 0 }]);
    const view = (await t.call("GET", `/api/tasks/${replicated}`, { token: creator })).json.task;
    expect(view).toMatchObject({ counts: { awaitingCopy: 1 }, waiting: { trustedCopy: 0, moreCopies: 1, examined: 1 } });
    // The creator's volunteer is linked to its account: the listing names it, never by email.
    expect(res.text).not.toContain("@");
    expect((await chunks(replicated, "?status=voting")).json.items.map((c: { index: number }) => c.index)).toEqual([1]);
  });

  it("is for the task's owner and admins only", async () => {
    expect((await chunks(retried, "", admin)).status).toBe(200);
    const foreign = await chunks(retried, "", stranger);
    // Like every task route (lib/task-access.ts): another creator's task is forbidden, not hidden.
    expect(foreign.status).toBe(403);
    expect(foreign.type).toMatch(/^application\/problem\+json/);
    expect((await chunks(retried, "", firstVolunteer.token)).status).toBe(403);
    expect((await t.call("GET", `/api/tasks/${retried}/chunks`)).status).toBe(401);
    expect((await chunks("00000000-0000-7000-8000-000000000000")).status).toBe(404);
    expect((await chunks("not-a-task")).status).toBe(404);
  });

  it("refuses bad parameters with a problem naming them, changing nothing", async () => {
    const before = await rowCounts(t);
    for (const [query, field] of [
      ["?status=lost", "status"],
      ["?status=", "status"],
      ["?limit=0", "limit"],
      ["?limit=201", "limit"],
      ["?limit=two", "limit"],
      ["?cursor=-1", "cursor"],
      ["?cursor=abc", "cursor"],
      ["?cursor=99999999999", "cursor"],
      ["?cursor=2147483648", "cursor"],
      ["?page=2", ""],
    ] as const) {
      const res = await chunks(retried, query);
      expect(res.status, query).toBe(422);
      expect(res.type).toMatch(/^application\/problem\+json/);
      if (field)
        expect(
          res.json.errors.map((e: { path: string }) => e.path),
          query,
        ).toContain(field);
    }
    expect(await rowCounts(t)).toEqual(before);
  });

  it("is the SDK's listChunks", async () => {
    const sdk = createClient({ baseUrl: "http://api.test", token: creator, fetch: (input, init) => Promise.resolve(t.app.request(String(input), init)) });
    const first = await sdk.listChunks(retried, { status: "done", limit: 1 });
    expect(first.items.map((c) => [c.index, c.status, c.input])).toEqual([[0, "done", 10]]);
    const next = await sdk.listChunks(retried, { status: "done", limit: 1, cursor: first.nextCursor! });
    expect(next.items.map((c) => c.index)).toEqual([2]);
    expect((await sdk.listChunks(retried)).items).toHaveLength(6);
    const refused = await sdk.listChunks(retried, { limit: 0 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(422);
  });

  it("is in the OpenAPI document, with its filter and limits", async () => {
    const doc = (await t.call("GET", "/api/openapi.json")).json;
    const operation = doc.paths["/api/tasks/{id}/chunks"].get;
    expect(operation.description).toContain("status=pending");
    const status = operation.parameters.find((p: { name: string }) => p.name === "status");
    expect(status.schema.enum).toEqual(["pending", "leased", "voting", "done", "failed"]);
    expect(doc.components.schemas.Chunk.properties.votes).toBeDefined();
    expect(doc.components.schemas.ChunkVote.properties.hashPrefix).toBeDefined();
  });
});
