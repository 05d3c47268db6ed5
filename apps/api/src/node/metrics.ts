// Operator metrics on Node: prom-client counters and histograms fed by the work
// routes, gauges read from the database at each scrape, and Node's process figures (RSS,
// event loop lag, ...). Each server has its own registry, so servers in one process (tests)
// do not mix their counts.
import type { Db } from "@crowdcompute/db";
import { dbPoolUse, operatorFigures } from "@crowdcompute/db/metrics";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { AppMetrics } from "../lib/metrics.ts";

// Lease and submit answers take a few ms on an idle server and up to seconds under load.
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Metrics of one API process over `db`.
 * @example const metrics = createNodeMetrics(db); createApp({ db, env, metrics });
 */
export function createNodeMetrics(db: Db, waiting: () => { size: number; arriving: number } = () => ({ size: 0, arriving: 0 })): AppMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  const leases = new Counter({ name: "crowdcompute_leases_total", help: "Chunks leased to volunteers (by lease requests and by results requests' next batch).", registers });
  const results = new Counter({
    name: "crowdcompute_results_total",
    help: "Volunteers' reports (results and errors) by outcome: accepted, or rejected (lease lost, already reported).",
    labelNames: ["outcome"],
    registers,
  });
  results.inc({ outcome: "accepted" }, 0);
  results.inc({ outcome: "rejected" }, 0);
  const leaseSeconds = new Histogram({
    name: "crowdcompute_lease_duration_seconds",
    help: "Time to answer POST /api/work/lease, from a valid body to the response.",
    buckets: latencyBuckets,
    registers,
  });
  const submitSeconds = new Histogram({
    name: "crowdcompute_submit_duration_seconds",
    help: "Time to answer POST /api/work/results, from a valid body to the response (a next batch included).",
    buckets: latencyBuckets,
    registers,
  });
  const volunteersOnline = new Gauge({ name: "crowdcompute_volunteers_online", help: "Volunteers holding a lease that is live or ended in the last 2 minutes.", registers });
  const chunks = new Gauge({
    name: "crowdcompute_chunks",
    help: "Chunks by state: done and failed of all tasks; pending and leased of running and paused tasks.",
    labelNames: ["state"],
    registers,
  });
  new Gauge({
    name: "crowdcompute_lease_requests_waiting",
    help: "Lease requests this process holds until work comes (waitMs).",
    registers,
    collect() {
      this.set(waiting().size);
    },
  });
  new Gauge({
    name: "crowdcompute_lease_requests_arriving",
    help: "Of the waiting lease requests, those held before their first lease, which they get in turn: more than LEASE_ARRIVING_MAX came at once (a herd of volunteers).",
    registers,
    collect() {
      this.set(waiting().arriving);
    },
  });
  const poolMax = new Gauge({ name: "crowdcompute_db_pool_max", help: "The most connections this process's database pool opens (embedded PGlite: 1).", registers });
  const connections = new Gauge({
    name: "crowdcompute_db_connections",
    help: "This process's open database connections by state: busy (a statement or transaction, this scrape's included) or idle (the LISTEN connection among them).",
    labelNames: ["state"],
    registers,
  });

  return {
    work: {
      leaseAnswered(chunkCount, seconds) {
        leases.inc(chunkCount);
        leaseSeconds.observe(seconds);
      },
      resultsAnswered({ accepted, rejected, leased }, seconds) {
        results.inc({ outcome: "accepted" }, accepted);
        results.inc({ outcome: "rejected" }, rejected);
        leases.inc(leased);
        submitSeconds.observe(seconds);
      },
    },
    async render() {
      // Read once per scrape here rather than in each gauge's collect(), which prom-client runs
      // concurrently; one after the other, so that the scrape holds one connection at a time.
      const figures = await operatorFigures(db);
      const pool = await dbPoolUse(db);
      volunteersOnline.set(figures.volunteersOnline);
      for (const [state, count] of Object.entries(figures.chunks)) chunks.set({ state }, count);
      poolMax.set(pool.max);
      connections.set({ state: "busy" }, pool.busy);
      connections.set({ state: "idle" }, pool.idle);
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
  };
}
