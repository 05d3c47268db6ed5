// A whole task through the HTTP API in one server process, phase after phase, with the
// server's memory watched: does it stay flat, and does it grow with the task's size?
//   upload:   POST /api/tasks/:id/inputs, NDJSON lines in parts of 250,000
//   compute:  16 keep-alive HTTP volunteers at full dispatch speed (blocks sized to the
//             work), each result the chunk's input echoed back
//   download: GET /api/tasks/:id/results, as NDJSON and as CSV
// Each phase prints its rate, the server's RSS at its start and its peak, and the peak of the
// V8 heap in use (from the server's /metrics). The server is the bundle `npm start` runs.
// BENCH_EMBEDDED=1 runs it as `npm start` does with no DATABASE_URL: on the embedded database
// (PGlite) in a temporary data directory, whose size it prints at the end.
// Usage: npx node bench/transfer.bench.ts [lines]   (DATABASE_URL, default the local server)
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, dropDatabase } from "@crowdcompute/db/testing";
import { adminUrl, databaseName, type JsonClient, keepAliveClient, rssMb, startApiProcess, startEmbeddedApiProcess, volunteerTokens } from "./api-process.ts";

const lines = Number(process.argv[2] ?? 1_000_000);
const partLines = 250_000;
const volunteers = 16;
const metricsToken = "bench-metrics-token-bench-metrics";

type Row = {
  phase: string;
  chunks: number;
  seconds: number;
  perSecond: number;
  startRssMb: number;
  peakRssMb: number;
  peakHeapMb: number;
  peakHeapTotalMb: number;
  peakExternalMb: number;
};
const rows: Row[] = [];

const embedded = process.env.BENCH_EMBEDDED === "1";
const dataDir = embedded ? mkdtempSync(join(tmpdir(), "cc-bench-embedded-")) : null;
const url = dataDir ? null : await createTestDatabase(adminUrl);
// Its 16 volunteers are one loopback source: room for each to hold a 4096-chunk block at once
// (docs/architecture.md, "Bounds on what one volunteer holds").
const serverEnv = { METRICS_TOKEN: metricsToken, LEASE_HELD_PER_SOURCE: String(16 * 4096 * 4) };
console.error(`the API runs with LEASE_HELD_PER_SOURCE=${serverEnv.LEASE_HELD_PER_SOURCE}`);
const server = dataDir ? await startEmbeddedApiProcess(dataDir, serverEnv) : await startApiProcess(url!, serverEnv);
const { base } = server;
const dataDirMb = () => (dataDir ? Number(execFileSync("du", ["-sm", dataDir], { encoding: "utf8" }).split("\t")[0]) : null);

// RSS from /proc every 50 ms; the heap in use from the server's own metrics every 250 ms.
let peakRss = 0;
let peakHeap = 0;
let peakHeapTotal = 0;
let peakExternal = 0;
const rssSampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(server.pid))), 50);
const heapSampler = setInterval(async () => {
  try {
    const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
    const mib = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? 0) / 1024 / 1024;
    peakHeap = Math.max(peakHeap, mib("nodejs_heap_size_used_bytes"));
    // Committed: what V8 holds from the OS for its heap, used or not.
    peakHeapTotal = Math.max(peakHeapTotal, mib("nodejs_heap_size_total_bytes"));
    // Buffers outside the heap: request and response bodies, the driver's.
    peakExternal = Math.max(peakExternal, mib("nodejs_external_memory_bytes"));
  } catch {
    // the server is busy or stopping: the next sample will do
  }
}, 250);

/** Runs a phase and records its rate and memory (peaks reset at its start). */
async function phase(name: string, chunks: number, work: () => Promise<void>): Promise<void> {
  const startRss = rssMb(server.pid);
  peakRss = startRss;
  peakHeap = 0;
  peakHeapTotal = 0;
  peakExternal = 0;
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const row = {
    phase: name,
    chunks,
    seconds,
    perSecond: Math.round(chunks / seconds),
    startRssMb: Math.round(startRss),
    peakRssMb: Math.round(peakRss),
    peakHeapMb: Math.round(peakHeap),
    peakHeapTotalMb: Math.round(peakHeapTotal),
    peakExternalMb: Math.round(peakExternal),
  };
  rows.push(row);
  console.error(
    `  ${name}: ${row.perSecond.toLocaleString("en")} chunks/s, RSS ${row.startRssMb} → peak ${row.peakRssMb} MiB, heap peak ${row.peakHeapMb} MiB in use, ${row.peakHeapTotalMb} MiB committed, ${row.peakExternalMb} MiB external`,
  );
}

/** One volunteer echoing each chunk's input back as its result, block after block, until none is left. */
async function computeAll(client: JsonClient, token: string): Promise<number> {
  const lease = { bufferMs: 4000, capabilities: { threads: 4 } };
  let accepted = 0;
  let blocks = (await client.post("/api/work/lease", lease, token)).leases as { leaseId: string; inputs: unknown[] }[];
  while (blocks.length > 0) {
    const out = await client.post("/api/work/results", { results: blocks.map((b) => ({ leaseId: b.leaseId, results: b.inputs, cpuMs: 0 })), next: lease }, token);
    accepted += out.accepted as number;
    blocks = out.leases;
  }
  return accepted;
}

try {
  const client = keepAliveClient(base, volunteers);
  const { token } = await client.post("/api/auth/register", { email: "bench@example.com", password: "bench password" });
  const auth = { authorization: `Bearer ${token}` };
  const { task } = await client.post("/api/tasks", { name: "transfer", code: "export default (x) => x", start: true }, token);
  const tokens = await volunteerTokens(client, volunteers);
  const idleRss = rssMb(server.pid);

  await phase("upload NDJSON", lines, async () => {
    // Each part streamed from a generator, so the client holds a thousand lines at a time.
    for (let offset = 0; offset < lines; offset += partLines) {
      const count = Math.min(partLines, lines - offset);
      const encoder = new TextEncoder();
      let next = offset;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (next >= offset + count) return controller.close();
          let text = "";
          for (let i = 0; i < 1000 && next < offset + count; i++, next++) text += `{"n":${next},"payload":"chunk-${next}"}\n`;
          controller.enqueue(encoder.encode(text));
        },
      });
      const seal = offset + count >= lines;
      const response = await fetch(`${base}/api/tasks/${task.id}/inputs?offset=${offset}&seal=${seal}`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/x-ndjson" },
        body,
        duplex: "half",
      } as RequestInit);
      if (!response.ok) throw new Error(`upload part at ${offset}: ${response.status} ${await response.text()}`);
    }
  });

  await phase(`compute (${volunteers} HTTP volunteers)`, lines, async () => {
    const accepted = (await Promise.all(tokens.map((t) => computeAll(client, t)))).reduce((a, b) => a + b, 0);
    if (accepted !== lines) throw new Error(`computed ${accepted} of ${lines}`);
  });

  // The client counts lines with indexOf: it shares the cores with the server.
  for (const format of ["ndjson", "csv"] as const) {
    let bytes = 0;
    await phase(`download ${format.toUpperCase()}`, lines, async () => {
      const response = await fetch(`${base}/api/tasks/${task.id}/results?format=${format}`, { headers: auth });
      let received = 0;
      for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += part.byteLength;
        for (let at = part.indexOf(10); at !== -1; at = part.indexOf(10, at + 1)) received++;
      }
      const expected = format === "csv" ? lines + 1 : lines; // CSV has a header line
      if (received !== expected) throw new Error(`downloaded ${received} of ${expected} ${format} lines`);
    });
    rows.at(-1)!.phase += ` (${Math.round(bytes / 1024 / 1024)} MiB)`;
  }

  const database = dataDir ? `embedded PGlite (data directory ${dataDirMb()} MB at the end)` : "Postgres server";
  console.log(`\n${lines.toLocaleString("en")} chunks on ${database}; server RSS when idle: ${Math.round(idleRss)} MiB\n`);
  console.log(
    "| phase | chunks | seconds | chunks/s | server RSS at start (MiB) | server peak RSS (MiB) | peak V8 heap in use (MiB) | peak V8 heap committed (MiB) | peak external (MiB) |\n|---|---|---|---|---|---|---|---|---|",
  );
  for (const row of rows)
    console.log(
      `| ${row.phase} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${row.startRssMb} | ${row.peakRssMb} | ${row.peakHeapMb} | ${row.peakHeapTotalMb} | ${row.peakExternalMb} |`,
    );
  console.log("\ntargets: ≥ 100,000 chunks/s for upload and download; server RSS < 200 MiB through every phase, not growing with the task");
  mkdirSync(new URL("./results", import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`./results/transfer${embedded ? "-embedded" : ""}.json`, import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), lines, embedded, idleRssMb: idleRss, dataDirMb: dataDirMb(), rows }, null, 2),
  );
} finally {
  clearInterval(rssSampler);
  clearInterval(heapSampler);
  await server.stop();
  if (url) await dropDatabase(adminUrl, databaseName(url));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
