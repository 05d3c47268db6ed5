// Load (issue 9): many simulated volunteers against one Node API process on real Postgres
// for a few minutes. Each volunteer behaves like the volunteer page (volunteer-runner.ts):
// it leases a batch, at once leases the next one ahead, "computes" the batch for a think
// time, then posts its results while it computes the next, and asks for its credit after a
// post (at most every 5 s). With no work it waits retryAfterMs.
//
// Think time: the page asks for 4 s of work for its threads; a volunteer of 2 threads with
// 2.5 s chunks gets blocks of 4 (the task's first ones too: 2 chunks a thread), 2 chunk times
// per block. We cap them at 8 and take 10 s a block, as 4 threads would;
// each batch draws its time uniformly from 5–15 s so that volunteers do not march in step.
// That is 2,000 / 10 s = 200 batches a second, 3 requests each (lease, results, credit).
// Pass another mean think time to see where one process saturates.
//
// Reported: p50/p99 latency of each call, the error rate (must be 0), the API process's
// RSS and the bench database's Postgres connections sampled every second (the pool,
// max 10 in packages/db/src/postgres.ts, must bound them; postgres.js adds one connection
// of its own for LISTEN), per minute and in all.
// Usage: npx node bench/polling.bench.ts [volunteers] [seconds] [mean think ms]
//   (or BENCH_VOLUNTEERS, BENCH_SECONDS, BENCH_THINK_MS; DATABASE_URL as for the others)
import { mkdirSync, writeFileSync } from "node:fs";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import pg from "pg";
import { adminUrl, databaseName, keepAliveClient, machineTimes, mean, percentile, rssMb, sleep, startApiProcess, startRangeTask, treeCpuSeconds, volunteerTokens } from "./api-process.ts";

const volunteers = Number(process.argv[2] ?? process.env.BENCH_VOLUNTEERS ?? 2000);
const seconds = Number(process.argv[3] ?? process.env.BENCH_SECONDS ?? 180);
const thinkMs = Number(process.argv[4] ?? process.env.BENCH_THINK_MS ?? 10_000);
const batch = 8;
const leaseBody = { max: batch, bufferMs: 10_000, capabilities: { threads: 4 } };
const creditRefreshMs = 5_000;
const poolMax = 10; // createPostgresDb's default, which the Node entry uses
const thinkTime = () => thinkMs * (0.5 + Math.random());

type Call = "lease" | "results" | "credit";
const calls: Call[] = ["lease", "results", "credit"];
/** One second's sample; CPU in seconds used so far (Node runs JavaScript on one core: 1 s per second is saturated). */
interface Sample {
  at: number;
  rssMb: number;
  poolConnections: number;
  listenConnections: number;
  busy: number;
  lockWaits: number;
  apiCpu: number;
  postgresCpu: number;
  clientCpu: number;
  machineBusy: number;
  machineTotal: number;
}

const url = await createTestDatabase(adminUrl);
// These volunteers hold the block leased ahead for up to two think times (~30 s) and never beat,
// where the page beats every 3 s: the silence after which a block goes back (15 s by default,
// docs/architecture.md "Dispatch") is raised past that, so the load stays what it was.
const silentMs = process.env.LEASE_SILENT_MS ?? String(4 * thinkMs);
console.error(`the API takes a block back after LEASE_SILENT_MS=${silentMs} without a beat (these volunteers do not beat)`);
const server = await startApiProcess(url, { IDLE_RETRY_MS: "2000", LEASE_SILENT_MS: silentMs });
// Connected to the admin database, so that it is not one of the connections it counts.
const monitor = new pg.Client({ connectionString: adminUrl });
await monitor.connect();
try {
  const client = keepAliveClient(server.base, volunteers);
  // Enough work that nobody runs dry: two batches in hand per volunteer, plus one per shortest think time.
  const chunks = Math.ceil(volunteers * batch * (2 + (seconds * 1000) / (thinkMs * 0.5)));
  await startRangeTask(client, "polling", chunks);
  const tokens = await volunteerTokens(client, volunteers);

  const started = Date.now();
  const stopAt = started + seconds * 1000;
  const minuteOf = (at: number) => Math.floor((at - started) / 60_000);
  const latencies = new Map<string, number[]>(); // `${call} ${minute}` and `${call}` → ms
  const errors: { at: number; call: Call; message: string }[] = [];
  const requests = { lease: 0, results: 0, credit: 0 };
  let chunksDone = 0;

  const timed = async <T>(call: Call, request: () => Promise<T>): Promise<T | null> => {
    const begun = performance.now();
    requests[call]++;
    try {
      const out = await request();
      const ms = performance.now() - begun;
      for (const key of [call, `${call} ${minuteOf(Date.now())}`]) {
        if (!latencies.has(key)) latencies.set(key, []);
        latencies.get(key)!.push(ms);
      }
      return out;
    } catch (error) {
      errors.push({ at: Date.now(), call, message: (error as Error).message });
      return null;
    }
  };

  const samples: Sample[] = [];
  const sample = async () => {
    // busy: running a statement or inside a transaction; lockWaits: of those, waiting for a row or table lock.
    const { rows } = await monitor.query<{ pool: string; listen: string; busy: string; lock_waits: string; pids: number[] | null }>(
      `SELECT array_agg(pid) AS pids, count(*) FILTER (WHERE query NOT ILIKE 'listen%') AS pool, count(*) FILTER (WHERE query ILIKE 'listen%') AS listen,
              count(*) FILTER (WHERE state <> 'idle' AND query NOT ILIKE 'listen%') AS busy, count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waits
       FROM pg_stat_activity WHERE datname = $1`,
      [databaseName(url)],
    );
    const { user, system } = process.cpuUsage();
    const machine = machineTimes();
    samples.push({
      at: Date.now(),
      rssMb: rssMb(server.pid),
      poolConnections: Number(rows[0]!.pool),
      listenConnections: Number(rows[0]!.listen),
      busy: Number(rows[0]!.busy),
      lockWaits: Number(rows[0]!.lock_waits),
      apiCpu: treeCpuSeconds(server.pid),
      clientCpu: (user + system) / 1e6,
      // The pool's connections stay open (postgres.js has no idle timeout by default), so this sum only grows.
      postgresCpu: (rows[0]!.pids ?? []).reduce((sum, pid) => sum + treeCpuSeconds(pid), 0),
      machineBusy: machine.busy,
      machineTotal: machine.total,
    });
  };
  const sampler = setInterval(() => void sample().catch(() => {}), 1000);

  type Lease = { leaseId: string; inputs: unknown[] };
  const lease = (token: string) => timed("lease", () => client.post("/api/work/lease", leaseBody, token) as Promise<{ leases: Lease[]; retryAfterMs: number }>);

  const volunteer = async (token: string, i: number) => {
    await sleep((i / volunteers) * thinkMs); // arrivals spread over one think time
    let creditAskedAt = 0;
    let posting: Promise<unknown> = Promise.resolve();
    let inHand = (await lease(token))?.leases ?? [];
    while (Date.now() < stopAt) {
      if (inHand.length === 0) {
        const out = await lease(token);
        inHand = out?.leases ?? [];
        if (inHand.length === 0) await sleep(out?.retryAfterMs ?? 1000);
        continue;
      }
      const running = inHand;
      const ahead = lease(token);
      await sleep(thinkTime());
      await posting; // one post at a time, as the page
      posting = timed("results", () =>
        client.post("/api/work/results", { results: running.map((b) => ({ leaseId: b.leaseId, results: new Array(b.inputs.length).fill(0), cpuMs: 2500 * b.inputs.length })) }, token),
      ).then((out) => {
        chunksDone += out?.accepted ?? 0;
        if (out && Date.now() - creditAskedAt >= creditRefreshMs) {
          creditAskedAt = Date.now();
          return timed("credit", () => client.get("/api/volunteers/me", token));
        }
      });
      inHand = (await ahead)?.leases ?? [];
    }
    await posting;
  };
  await Promise.all(tokens.map(volunteer));
  clearInterval(sampler);
  const elapsed = (Date.now() - started) / 1000;

  const stats = (key: string) => {
    const sorted = (latencies.get(key) ?? []).sort((a, b) => a - b);
    return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
  };
  const overall = calls.map((call) => ({ call, ...stats(call), errors: errors.filter((e) => e.call === call).length }));
  const minutes = Array.from({ length: Math.max(1, Math.ceil(seconds / 60)) }, (_, minute) => {
    const inMinute = samples.filter((s) => minuteOf(s.at) === minute);
    const cpuPercent = (of: (s: Sample) => number) => (inMinute.length < 2 ? Number.NaN : (100 * (of(inMinute.at(-1)!) - of(inMinute[0]!))) / ((inMinute.at(-1)!.at - inMinute[0]!.at) / 1000));
    return {
      minute: minute + 1,
      lease: stats(`lease ${minute}`),
      results: stats(`results ${minute}`),
      errors: errors.filter((e) => minuteOf(e.at) === minute).length,
      rssMeanMb: mean(inMinute.map((s) => s.rssMb)),
      rssMaxMb: Math.max(...inMinute.map((s) => s.rssMb)),
      poolConnectionsMax: Math.max(...inMinute.map((s) => s.poolConnections)),
      listenConnectionsMax: Math.max(...inMinute.map((s) => s.listenConnections)),
      busyMean: mean(inMinute.map((s) => s.busy)),
      lockWaitsMean: mean(inMinute.map((s) => s.lockWaits)),
      apiCpuPercent: cpuPercent((s) => s.apiCpu),
      postgresCpuPercent: cpuPercent((s) => s.postgresCpu),
      machineBusyPercent: inMinute.length < 2 ? Number.NaN : (100 * (inMinute.at(-1)!.machineBusy - inMinute[0]!.machineBusy)) / (inMinute.at(-1)!.machineTotal - inMinute[0]!.machineTotal),
      clientCpuPercent: cpuPercent((s) => s.clientCpu),
    };
  });
  const totalRequests = requests.lease + requests.results + requests.credit;
  const poolConnectionsMax = Math.max(...samples.map((s) => s.poolConnections));
  const listenConnectionsMax = Math.max(...samples.map((s) => s.listenConnections));
  const firstMinuteRss = mean(samples.filter((s) => s.at - started < 60_000).map((s) => s.rssMb));
  const lastMinuteRss = mean(samples.filter((s) => Date.now() - s.at <= 60_000).map((s) => s.rssMb));

  const ms = (x: number) => x.toFixed(1);
  console.log(
    `\n${volunteers} volunteers for ${elapsed.toFixed(0)} s, mean think time ${thinkMs} ms (uniform ${thinkMs / 2}–${(thinkMs * 3) / 2} ms), ${batch}-chunk batches: ${totalRequests} requests (${(totalRequests / elapsed).toFixed(0)}/s), ${chunksDone} chunks done\n`,
  );
  console.log("| call | requests | p50 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|");
  for (const row of overall) console.log(`| ${row.call} | ${row.count} | ${ms(row.p50)} | ${ms(row.p99)} | ${ms(row.max)} | ${row.errors} |`);
  console.log(
    "\n| minute | lease p50 / p99 ms | results p50 / p99 ms | errors | server RSS mean / max MB | Postgres connections max (pool + LISTEN) | connections busy / waiting on a lock (mean) | CPU % of a core: API / Postgres pool / bench client | machine busy |\n|---|---|---|---|---|---|---|---|---|",
  );
  for (const m of minutes) {
    console.log(
      `| ${m.minute} | ${ms(m.lease.p50)} / ${ms(m.lease.p99)} | ${ms(m.results.p50)} / ${ms(m.results.p99)} | ${m.errors} | ${m.rssMeanMb.toFixed(0)} / ${m.rssMaxMb.toFixed(0)} | ${m.poolConnectionsMax} + ${m.listenConnectionsMax} | ${m.busyMean.toFixed(1)} / ${m.lockWaitsMean.toFixed(1)} | ${m.apiCpuPercent.toFixed(0)} / ${m.postgresCpuPercent.toFixed(0)} / ${m.clientCpuPercent.toFixed(0)} | ${m.machineBusyPercent.toFixed(0)} % |`,
    );
  }
  const errorRate = errors.length / Math.max(1, totalRequests);
  const connectionsBounded = poolConnectionsMax <= poolMax && listenConnectionsMax <= 1;
  console.log(`\nerror rate ${(100 * errorRate).toFixed(3)} % (target 0)${errors[0] ? `; first error: ${errors[0].message}` : ""}`);
  console.log(
    `server RSS: first minute mean ${firstMinuteRss.toFixed(0)} MB, last minute mean ${lastMinuteRss.toFixed(0)} MB (${lastMinuteRss >= firstMinuteRss ? "+" : ""}${(lastMinuteRss - firstMinuteRss).toFixed(0)} MB)`,
  );
  console.log(
    `Postgres connections to the bench database: at most ${poolConnectionsMax} pool + ${listenConnectionsMax} LISTEN (pool max ${poolMax}): ${connectionsBounded ? "bounded" : "NOT bounded"}`,
  );
  console.log(`server output during the run: ${server.outputBytes()} characters; target: p99 lease latency < 50 ms`);
  mkdirSync(new URL("./results", import.meta.url), { recursive: true });
  writeFileSync(
    new URL("./results/polling.json", import.meta.url),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        volunteers,
        seconds: elapsed,
        thinkMs,
        batch,
        requests,
        chunksDone,
        errorRate,
        errors: errors.slice(0, 20),
        overall,
        minutes,
        firstMinuteRss,
        lastMinuteRss,
        poolMax,
        poolConnectionsMax,
        listenConnectionsMax,
        samples,
      },
      null,
      2,
    ),
  );
  if (errors.length > 0 || !connectionsBounded) process.exitCode = 1;
} finally {
  await monitor.end();
  await server.stop();
  await dropDatabase(adminUrl, databaseName(url));
}
