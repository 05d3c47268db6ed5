// Lease requests that wait for work (`waitMs`, docs/architecture.md "Dispatch", waiting
// volunteers): held with no work, answered when a task starts, inputs are appended or a lease
// expires back; one waiting request per volunteer, a per-source cap, bad waitMs refused.
import { type Db, listenWorkReady, notifyWorkReady, sweepExpiredLeases } from "@crowdcompute/db";
import { openTestDb, testBackends } from "@crowdcompute/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/create-app.ts";
import { createWorkWaiters, type WorkWaiters } from "../src/lib/work-waiters.ts";
import { apiClient, testEnv } from "./harness.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An app on a fresh database of `backend` whose waiting lease requests are held by the waiters `make` builds, woken by NOTIFY, and a creator. */
async function waitingApp(backend: Parameters<typeof openTestDb>[0], make: (db: Db) => WorkWaiters, env: Parameters<typeof testEnv>[0] = {}) {
  const testDb = await openTestDb(backend);
  const db = testDb.handle.db;
  const waiters = make(db);
  const stop = await listenWorkReady(db, (ids) => waiters.wake(ids));
  const app = createApp({ db, env: testEnv(env), waiters });
  const t = apiClient(async (path, init) => app.request(path, init));
  const creator = (await t.register("wait@example.com")).token;
  return {
    db,
    waiters,
    t,
    creator,
    dispose: async () => {
      await waiters.close();
      await stop();
      await testDb.dispose();
    },
  };
}

/** No task runs or is paused: a lease finds no work. */
const idleTasks = (db: Db) => db.execute(sql`UPDATE tasks SET status = 'cancelled' WHERE status IN ('running', 'paused')`);

describe.each(testBackends())("waiting lease requests on %s", (backend) => {
  let app: Awaited<ReturnType<typeof waitingApp>>;
  let db: Db;
  let waiters: WorkWaiters;
  let t: ReturnType<typeof apiClient>;
  let creator: string;

  beforeAll(async () => {
    // As the Node entry builds them (node/server.ts), with a per-source cap of 3 to test it.
    app = await waitingApp(
      backend,
      (db) =>
        createWorkWaiters({
          perSource: 3,
          total: 100,
          tick: () => void sweepExpiredLeases(db, crypto.randomUUID()).then((n) => (n > 0 ? notifyWorkReady(db, ["*"]) : undefined)),
        }),
      { leaseGraceMs: 100 },
    );
    ({ db, waiters, t, creator } = app);
  });
  afterAll(async () => {
    await app?.dispose();
  });

  const idle = () => idleTasks(db);
  const lease = (token: string, body: Record<string, unknown> = {}) => t.call("POST", "/api/work/lease", { token, body: { max: 4, waitMs: 20_000, ...body } });
  /** Resolves once `n` requests wait here (they are held, not answered). */
  const waiting = async (n: number) => {
    while (waiters.size !== n) await sleep(10);
  };

  it("holds a request with no work and answers it when a task starts", async () => {
    await idle();
    const v = await t.volunteer();
    const answer = lease(v.token);
    await waiting(1);
    const task = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "w", code: "export default (x) => x", inputs: [1, 2, 3], start: true } })).json.task;
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.json.leases.map((l: { taskId: string }) => l.taskId)).toEqual([task.id]);
    expect(waiters.size).toBe(0);
  });

  it("answers a wait that ran its time out with no work and retryAfterMs 0, so the volunteer asks again at once", async () => {
    await idle();
    const v = await t.volunteer();
    const res = await lease(v.token, { waitMs: 300 });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ leases: [], retryAfterMs: 0 });
    expect(waiters.size).toBe(0);
  });

  it("answers a waiting request when a paused task resumes and when inputs are appended", async () => {
    await idle();
    const task = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "w", code: "export default (x) => x", inputs: [1], start: true } })).json.task;
    await t.call("POST", `/api/tasks/${task.id}/pause`, { token: creator });
    const v = await t.volunteer();
    const resumed = lease(v.token);
    await waiting(1);
    await t.call("POST", `/api/tasks/${task.id}/resume`, { token: creator });
    expect((await resumed).json.leases.map((l: { inputs: unknown[] }) => l.inputs)).toEqual([[1]]);

    // An NDJSON task takes inputs while it runs: the waiting volunteer gets them.
    await idle();
    const open = (await t.call("POST", "/api/tasks", { token: creator, body: { name: "w", code: "export default (x) => x", start: true } })).json.task;
    const other = await t.volunteer();
    const appended = lease(other.token);
    await waiting(1);
    const upload = await t.call("POST", `/api/tasks/${open.id}/inputs?offset=0`, { token: creator, raw: "7\n8\n", headers: { "content-type": "application/x-ndjson" } });
    expect(upload.status).toBeLessThan(300);
    expect((await appended).json.leases.flatMap((l: { inputs: unknown[] }) => l.inputs)).toEqual([7, 8]);
  });

  it("answers a waiting request when another volunteer's lease expires back", async () => {
    await idle();
    await t.call("POST", "/api/tasks", { token: creator, body: { name: "w", code: "export default (x) => x", inputs: [5], timeoutMs: 1000, start: true } });
    const gone = await t.volunteer();
    expect((await lease(gone.token)).json.leases).toHaveLength(1);
    const v = await t.volunteer();
    // Nothing left: it waits; the silent volunteer's block expires (1 s + 100 ms of grace) and
    // the waiters' sweep (every second while any wait) takes it back and wakes it.
    const res = await lease(v.token);
    expect(res.json.leases.map((l: { inputs: unknown[] }) => l.inputs)).toEqual([[5]]);
  });

  it("keeps one waiting request per volunteer and caps a source's, answering the others at once", async () => {
    await idle();
    const v = await t.volunteer();
    const first = lease(v.token);
    await waiting(1);
    const second = lease(v.token);
    // The newer takes the older's place: the older is answered with no work.
    const older = await first;
    expect(older.status).toBe(200);
    expect(older.json).toEqual({ leases: [], retryAfterMs: 2000 });
    await waiting(1);
    // Anonymous volunteers of one source (in process: "unknown") wait up to 3 at once here.
    const others = await Promise.all([t.volunteer(), t.volunteer(), t.volunteer()]);
    const held = [lease(others[0]!.token), lease(others[1]!.token)];
    await waiting(3);
    const refused = await lease(others[2]!.token);
    expect(refused.json).toEqual({ leases: [], retryAfterMs: 2000 });
    expect(waiters.size).toBe(3);
    await t.call("POST", "/api/tasks", { token: creator, body: { name: "w", code: "export default (x) => x", inputs: [1, 2, 3], start: true } });
    const answers = await Promise.all([second, ...held]);
    expect(answers.flatMap((a) => a.json.leases.flatMap((l: { inputs: unknown[] }) => l.inputs)).sort()).toEqual([1, 2, 3]);
  });

  it("refuses a bad waitMs with problem+json, holding nothing", async () => {
    const v = await t.volunteer();
    for (const waitMs of [-1, 25_001, 1.5, "10"]) {
      const res = await lease(v.token, { waitMs });
      expect(res.status).toBe(422);
      expect(res.type).toBe("application/problem+json");
    }
    expect(waiters.size).toBe(0);
  });
});

// Past LEASE_ARRIVING_MAX leasing as they arrive, a waiting request is held at once and leases
// in turn (docs/architecture.md, "Dispatch", waiting volunteers): what each volunteer gets is
// as if it had leased at once.
describe.each(testBackends())("a herd of waiting lease requests on %s", (backend) => {
  let app: Awaited<ReturnType<typeof waitingApp>>;
  let waiters: WorkWaiters;
  let heldBeforeLeasing = 0;
  let t: ReturnType<typeof apiClient>;
  let creator: string;

  beforeAll(async () => {
    app = await waitingApp(backend, () => {
      const real = createWorkWaiters({ perSource: 100, total: 100, arrivingMax: 1 });
      const holdArriving = real.holdArriving;
      real.holdArriving = (request) => {
        heldBeforeLeasing++;
        holdArriving(request);
      };
      return real;
    });
    ({ waiters, t, creator } = app);
  });
  afterAll(async () => {
    await app?.dispose();
  });

  const idle = () => idleTasks(app.db);
  const inputsOf = (answers: { json: { leases: { inputs: number[] }[] } }[]) => answers.flatMap((a) => a.json.leases.flatMap((l) => l.inputs)).sort((a, b) => a - b);
  /** `n` volunteers ask at once while the one place is taken (as by another request leasing), which is freed once all are held. */
  const herd = async (n: number) => {
    const volunteers = await Promise.all(Array.from({ length: n }, () => t.volunteer()));
    heldBeforeLeasing = 0;
    const place = waiters.arrive()!;
    const asked = volunteers.map((v) => t.call("POST", "/api/work/lease", { token: v.token, body: { max: 1, waitMs: 20_000 } }));
    while (waiters.arriving !== n) await sleep(5);
    expect(heldBeforeLeasing).toBe(n);
    place();
    return asked;
  };

  it("leases for each in turn when there is work: every one gets its own chunk", async () => {
    await idle();
    await t.call("POST", "/api/tasks", { token: creator, body: { name: "herd", code: "export default (x) => x", inputs: [1, 2, 3, 4, 5, 6, 7, 8], start: true } });
    const answers = await Promise.all(await herd(8));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(inputsOf(answers)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(waiters.size).toBe(0);
  });

  it("leaves each waiting after its turn when there is none, and answers them all when a task starts", async () => {
    await idle();
    const asked = await herd(8);
    while (waiters.size !== 8 || waiters.arriving !== 0) await sleep(10);
    await t.call("POST", "/api/tasks", { token: creator, body: { name: "herd", code: "export default (x) => x", inputs: [1, 2, 3, 4, 5, 6, 7, 8], start: true } });
    const answers = await Promise.all(asked);
    expect(answers.map((a) => a.json.leases.length)).toEqual(Array(8).fill(1));
    expect(inputsOf(answers)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
