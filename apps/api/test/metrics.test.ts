// GET /metrics on the Node server over real HTTP: hidden until METRICS_TOKEN is set, guarded
// by it, and counting exactly what volunteers leased and posted.
import { openTestDb, type TestDb, testBackends } from "@crowdcompute/db/testing";
import { chunksOfLeases, type LeasedBlock } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/create-app.ts";
import { type RunningServer, startServer } from "../src/node/server.ts";
import { apiClient, testEnv } from "./harness.ts";

const metricsToken = "operator-metrics-token-0123456789";

/** `name{labels}` (as written in the exposition) → value. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

describe.each(testBackends())("GET /metrics (%s)", (backend) => {
  let testDb: TestDb;
  let withToken: RunningServer;
  let withoutToken: RunningServer;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
    withToken = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0, metricsToken }) });
    withoutToken = await startServer({ db: testDb.handle.db, env: testEnv({ port: 0 }) });
  });
  afterAll(async () => {
    await withToken?.close();
    await withoutToken?.close();
    await testDb?.dispose();
  });

  const scrape = (server: RunningServer, authorization?: string) => fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: authorization ? { authorization } : {} });

  it("is not served without METRICS_TOKEN, nor by an app given no metrics (the Workers entry)", async () => {
    for (const response of [await scrape(withoutToken), await scrape(withoutToken, `Bearer ${metricsToken}`)]) {
      expect(response.status).toBe(404);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
    }
    const app = createApp({ db: testDb.handle.db, env: testEnv({ metricsToken }) });
    const response = await app.request("/metrics", { headers: { authorization: `Bearer ${metricsToken}` } });
    expect(response.status).toBe(404);
  });

  it("refuses a missing or wrong token with 401", async () => {
    for (const authorization of [undefined, `Bearer ${metricsToken}x`, `Bearer ${metricsToken.slice(1)}`, metricsToken, "Bearer"]) {
      const response = await scrape(withToken, authorization);
      expect(response.status).toBe(401);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect((await response.json()).status).toBe(401);
    }
  });

  it("counts leases, results and their latencies exactly, and reads chunks, volunteers and the pool from the database", async () => {
    const api = apiClient((path, init) => fetch(`http://127.0.0.1:${withToken.port}${path}`, init));
    const { token } = await api.register(`metrics-${backend}@example.com`);
    const create = async (name: string, count: number) => {
      const res = await api.call("POST", "/api/tasks", { token, body: { name, code: "export default (n) => n * 2", inputs: Array.from({ length: count }, (_, i) => i), start: true } });
      expect(res.status).toBe(201);
      return res.json.task.id as string;
    };
    const [kept, cancelled] = [await create("kept", 10), await create("cancelled", 3)];
    const volunteer = (await api.volunteer()).token;
    // A new task gives 2 chunks a thread: ask with enough threads for `max`.
    const leaseBody = (max: number, exclude: string) => ({ max, capabilities: { threads: Math.ceil(max / 2) }, exclude: { tasks: [exclude] } });
    const lease = async (max: number, exclude: string) => {
      const res = await api.call("POST", "/api/work/lease", { token: volunteer, body: leaseBody(max, exclude) });
      expect(res.status).toBe(200);
      return res.json.leases as LeasedBlock[];
    };
    const report = (blocks: LeasedBlock[]) => blocks.map((b) => ({ leaseId: b.leaseId, results: (b.inputs as number[]).map((x) => x * 2), cpuMs: b.inputs.length }));

    const first = await lease(4, cancelled);
    const second = await lease(3, kept);
    expect([chunksOfLeases(first).length, chunksOfLeases(second).length]).toEqual([4, 3]);
    expect((await api.call("POST", `/api/tasks/${cancelled}/cancel`, { token })).status).toBe(200);
    // 4 accepted, 3 rejected (their task was cancelled), and a next block of 2.
    const posted = await api.call("POST", "/api/work/results", { token: volunteer, body: { results: report([...first, ...second]), next: leaseBody(2, cancelled) } });
    expect(posted.json.accepted).toBe(4);
    expect(posted.json.rejected).toEqual(second.map((b) => ({ leaseId: b.leaseId, offset: 0, count: b.inputs.length, reason: "task-cancelled" })));
    expect(chunksOfLeases(posted.json.leases)).toHaveLength(2);
    // One chunk of the next block: the other stays leased.
    const [next] = posted.json.leases as LeasedBlock[];
    const again = await api.call("POST", "/api/work/results", { token: volunteer, body: { results: [{ leaseId: next!.leaseId, results: [(next!.inputs[0] as number) * 2], cpuMs: 1 }] } });
    expect(again.json).toEqual({ accepted: 1, rejected: [] });
    // A refused request is not counted.
    expect((await api.call("POST", "/api/work/lease", { token: volunteer, body: { max: 16_385 } })).status).toBe(422);

    const response = await scrape(withToken, `Bearer ${metricsToken}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const metrics = parseExposition(await response.text());
    expect(metrics.get("crowdcompute_leases_total")).toBe(9);
    expect(metrics.get('crowdcompute_results_total{outcome="accepted"}')).toBe(5);
    expect(metrics.get('crowdcompute_results_total{outcome="rejected"}')).toBe(3);
    expect(metrics.get("crowdcompute_lease_duration_seconds_count")).toBe(2);
    expect(metrics.get("crowdcompute_submit_duration_seconds_count")).toBe(2);
    expect(metrics.get('crowdcompute_lease_duration_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(metrics.get("crowdcompute_submit_duration_seconds_sum")).toBeGreaterThan(0);
    expect(metrics.get("crowdcompute_volunteers_online")).toBe(1);
    // The kept task: 5 done, 1 leased, 4 pending; the cancelled one's chunks are neither pending nor leased.
    expect(metrics.get('crowdcompute_chunks{state="done"}')).toBe(5);
    expect(metrics.get('crowdcompute_chunks{state="failed"}')).toBe(0);
    expect(metrics.get('crowdcompute_chunks{state="leased"}')).toBe(1);
    expect(metrics.get('crowdcompute_chunks{state="pending"}')).toBe(4);
    const max = metrics.get("crowdcompute_db_pool_max")!;
    const busy = metrics.get('crowdcompute_db_connections{state="busy"}')!;
    const idle = metrics.get('crowdcompute_db_connections{state="idle"}')!;
    if (backend === "pglite") {
      expect([max, busy, idle]).toEqual([1, 1, 0]);
    } else {
      // The test database's pool opens up to 10; the scrape's own query is busy; LISTEN is idle.
      expect(max).toBe(10);
      expect(busy).toBe(1);
      expect(idle).toBeGreaterThanOrEqual(1);
      expect(busy + idle).toBeLessThanOrEqual(max + 1);
    }
    expect(metrics.get("process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});
