// 10,000 waiting volunteers on one API process (docs/architecture.md, "Dispatch", waiting
// volunteers): lean clients hold `waitMs` lease requests on keep-alive sockets (raw sockets,
// one client process); the API's RSS, a creator's GET /api/tasks/:id p99 while they wait, and
// how soon every volunteer has work once a 10,000-chunk task starts. The peer in the same run:
// the same creator reads with nobody waiting.
// BENCH_WAITING (10000).
import net from "node:net";
import { benchMintLimits, type JsonClient, liveServer, machineTimes, percentile, rssMb, sleep, treeCpuSeconds, volunteerTokens } from "./api-process.ts";

const count = Number(process.env.BENCH_WAITING ?? 10_000);
const metricsToken = "bench-metrics-token-0123456789";
const env = { LEASE_WAITING_PER_SOURCE: String(count * 2), LEASE_WAITING_MAX: String(count * 2), METRICS_TOKEN: metricsToken };
console.log(
  `minting limits raised for loopback: ${JSON.stringify(benchMintLimits)}; ${Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ")}`,
);

/** One volunteer's keep-alive socket, asking for work again and again until it gets some. */
class Waiter {
  private socket!: net.Socket;
  private buffer = "";
  /** Answers with no work received (the first is at once: nothing runs yet). */
  empty = 0;
  /** performance.now() when an answer with work arrived. */
  gotWorkAt = 0;
  private readonly port: number;
  private readonly token: string;
  constructor(port: number, token: string) {
    this.port = port;
    this.token = token;
  }
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket = net.connect(this.port, "127.0.0.1", () => resolve());
      this.socket.once("error", reject);
      this.socket.setEncoding("utf8");
      this.socket.on("data", (text: string) => this.read(text));
    });
  }
  ask(): void {
    const body = JSON.stringify({ max: 1, capabilities: { threads: 1 }, waitMs: 25_000 });
    this.socket.write(
      `POST /api/work/lease HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${this.token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  private read(text: string): void {
    this.buffer += text;
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.buffer.slice(0, end);
    let json: string;
    if (/transfer-encoding: chunked/i.test(head)) {
      // A held answer comes as a stream: its chunks, then a zero-length one.
      const last = this.buffer.indexOf("\r\n0\r\n\r\n", end + 4);
      if (last < 0) return;
      json = "";
      for (let at = end + 4; at < last; ) {
        const lineEnd = this.buffer.indexOf("\r\n", at);
        const size = Number.parseInt(this.buffer.slice(at, lineEnd), 16);
        json += this.buffer.slice(lineEnd + 2, lineEnd + 2 + size);
        at = lineEnd + 2 + size + 2;
      }
      this.buffer = this.buffer.slice(last + 7);
    } else {
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      json = this.buffer.slice(end + 4, end + 4 + length);
      this.buffer = this.buffer.slice(end + 4 + length);
    }
    const answer = JSON.parse(json) as { leases: unknown[]; retryAfterMs: number };
    if (answer.leases.length > 0) {
      this.gotWorkAt = performance.now();
      return;
    }
    this.empty++;
    // As the page does: at once after a whole wait, later when the answer says so.
    if (answer.retryAfterMs > 0) setTimeout(() => this.ask(), answer.retryAfterMs);
    else this.ask();
  }
  close(): void {
    this.socket.destroy();
  }
}

async function creatorReads(client: JsonClient, token: string, taskId: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const at = performance.now();
    await client.get(`/api/tasks/${taskId}`, token);
    times.push(performance.now() - at);
    await sleep(10);
  }
  return times.sort((a, b) => a - b);
}

/** A figure of the API's /metrics: prom-client's nodejs_heap_size_used_bytes, crowdcompute_lease_requests_waiting. */
async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? Number.NaN);
}
const heapUsedMb = async (base: string) => (await metric(base, "nodejs_heap_size_used_bytes")) / 1024 / 1024;
/** RSS split into V8's committed heap (what it keeps between collections) and everything else (malloc: sockets, parsers, crypto). */
async function rssParts(base: string, pid: number): Promise<string> {
  const rss = rssMb(pid);
  const committed = (await metric(base, "nodejs_heap_size_total_bytes")) / 1024 / 1024;
  const used = await heapUsedMb(base);
  return `| ${rss.toFixed(0)} | ${committed.toFixed(0)} | ${used.toFixed(0)} | ${(rss - committed).toFixed(0)} |`;
}

const live = await liveServer(env, 64);
const { server: api, client, token: creator } = live;
const waiters: Waiter[] = [];
try {
  const { task: probe } = await client.post("/api/tasks", { name: "probe", code: "export default (x) => x", inputs: [1] }, creator);
  const partsIdle = await rssParts(api.base, api.pid);
  const alone = await creatorReads(client, creator, probe.id, 200);

  let at = performance.now();
  const tokens = await volunteerTokens(client, count, 64);
  const mintS = (performance.now() - at) / 1000;
  const partsMinted = await rssParts(api.base, api.pid);
  at = performance.now();
  for (let i = 0; i < tokens.length; i += 500) {
    const batch = tokens.slice(i, i + 500).map((token) => new Waiter(api.port, token));
    await Promise.all(batch.map((w) => w.connect()));
    waiters.push(...batch);
  }
  await sleep(1000);
  const partsSockets = await rssParts(api.base, api.pid);
  // They come to wait at about 1,000 a second (each one's first request reads what it holds).
  for (let i = 0; i < waiters.length; i += 100) {
    for (const w of waiters.slice(i, i + 100)) w.ask();
    await sleep(100);
  }
  // Until the API holds every one and each has had its first lease (past LEASE_ARRIVING_MAX at
  // once they are held first and lease in turn); the creator reads meanwhile.
  const readsArriving: number[] = [];
  const settled = async () => (await metric(api.base, "crowdcompute_lease_requests_waiting")) >= count && (await metric(api.base, "crowdcompute_lease_requests_arriving")) === 0;
  while (!(await settled())) readsArriving.push(...(await creatorReads(client, creator, probe.id, 10)));
  readsArriving.sort((a, b) => a - b);
  const heldAfterS = (performance.now() - at) / 1000;
  if (process.env.BENCH_HEAP_SNAPSHOT) {
    await sleep(8000);
    process.kill(api.pid, "SIGUSR2");
    await sleep(Number(process.env.BENCH_HEAP_SNAPSHOT));
  }
  const partsWaiting = await rssParts(api.base, api.pid);
  const during = await creatorReads(client, creator, probe.id, 200);
  const partsAfterReads = await rssParts(api.base, api.pid);

  const cpuBefore = treeCpuSeconds(api.pid);
  const clientBefore = process.cpuUsage();
  const machineBefore = machineTimes();
  const startedAt = performance.now();
  await client.post("/api/tasks", { name: "ten thousand", code: "export default () => 0", range: { start: 0, end: count, size: 1 }, start: true }, creator);
  let peakRss = rssMb(api.pid);
  const handingOut = () => waiters.some((w) => w.gotWorkAt === 0) && performance.now() - startedAt < 30_000;
  // The creator reads its task meanwhile, as it would while its work goes out.
  const readsDuring: number[] = [];
  const reading = (async () => {
    while (handingOut()) {
      const at = performance.now();
      await client.get(`/api/tasks/${probe.id}`, creator);
      readsDuring.push(performance.now() - at);
      await sleep(10);
    }
  })();
  while (handingOut()) {
    await sleep(100);
    peakRss = Math.max(peakRss, rssMb(api.pid));
  }
  await reading;
  readsDuring.sort((a, b) => a - b);
  const handOutS = (performance.now() - startedAt) / 1000;
  const apiCpuS = treeCpuSeconds(api.pid) - cpuBefore;
  const clientUsage = process.cpuUsage(clientBefore);
  const clientCpuS = (clientUsage.user + clientUsage.system) / 1e6;
  const machineAfter = machineTimes();
  const got = waiters
    .map((w) => w.gotWorkAt)
    .filter((t) => t > 0)
    .map((t) => t - startedAt)
    .sort((a, b) => a - b);
  const row = (name: string, xs: number[]) => `| ${name} | ${percentile(xs, 50).toFixed(1)} | ${percentile(xs, 99).toFixed(1)} | ${xs[xs.length - 1]!.toFixed(1)} |`;
  console.log(`\n${count} volunteers minted in ${mintS.toFixed(1)} s; connected and asking at ~1,000 a second, all held and through their first lease after ${heldAfterS.toFixed(1)} s`);
  console.log("\n| creator's GET /api/tasks/:id | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
  console.log(row("nobody waiting (peer)", alone));
  if (readsArriving.length > 0) console.log(row(`while the last of the ${count} come and lease first`, readsArriving));
  console.log(row(`${count} waiting`, during));
  console.log(row(`while the ${count} get work`, readsDuring));
  const partsHandedOut = await rssParts(api.base, api.pid);
  console.log("\n| API memory, MiB | RSS | V8 heap committed | V8 heap in use | RSS outside the V8 heap |\n|---|---|---|---|---|");
  console.log(
    [
      `| idle, before the volunteers ${partsIdle}`,
      `| ${count} minted ${partsMinted}`,
      `| ${count} idle keep-alive sockets ${partsSockets}`,
      `| ${count} waiting ${partsWaiting}`,
      `| after the creator's reads ${partsAfterReads}`,
      `| after the hand-out ${partsHandedOut}`,
    ].join("\n"),
  );
  console.log(`peak RSS while the task is handed out: ${peakRss.toFixed(0)} MiB`);
  console.log(`\n| a ${count}-chunk task starts → volunteers with work | ms |\n|---|---|`);
  for (const n of [1, 1000, Math.floor(count / 2), count]) console.log(`| first ${n} | ${got[n - 1]?.toFixed(0) ?? `only ${got.length} got work`} |`);
  console.log(
    `(while handing out: the API process used ${apiCpuS.toFixed(1)} CPU s in ${handOutS.toFixed(1)} s, ${(apiCpuS / handOutS).toFixed(2)} cores; this client with its ${count} sockets ${(clientCpuS / handOutS).toFixed(2)}; the machine ${((machineAfter.busySeconds - machineBefore.busySeconds) / handOutS).toFixed(2)} of its cores busy, Postgres most of the rest)`,
  );
  console.log("\ntargets: RSS < 300 MiB; GET p99 < 50 ms while waiting; all within 5 s, first 1,000 within 1 s");
} finally {
  for (const w of waiters) w.close();
  await live.close();
}
process.exit(0);
