// Bulk transfer through the HTTP API, with the server's memory watched (issue: 1M-chunk NDJSON
// upload and full results download, each ≥ 100k chunks/s with server RSS < 200 MB).
//   upload:   POST /api/tasks/:id/inputs, 1,000,000 NDJSON lines in parts of 250,000
//   download: GET /api/tasks/:id/results of 1,000,000 done chunks (completed beforehand
//             through the db modules, outside the clock), as NDJSON and as CSV
// The server is the bundle `npm start` runs (apps/api/dist/main.js), built first.
// Usage: npx node bench/transfer.bench.ts [lines]   (DATABASE_URL, default the local server)
import { mkdirSync, writeFileSync } from "node:fs";
import { createVolunteer, leaseChunks, submitChunks } from "@crowdcompute/db";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { createTestDatabase, dropDatabase, leaseRef, leaseRequest } from "@crowdcompute/db/testing";
import { adminUrl, databaseName, rssMb, startApiProcess } from "./api-process.ts";

const lines = Number(process.argv[2] ?? 1_000_000);
const partLines = 250_000;

const url = await createTestDatabase(adminUrl);
const server = await startApiProcess(url);
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(server.pid))), 50);
// RSS at each step's start too: V8 keeps the heap an earlier step grew, so a peak alone
// does not tell which step grew it.
const rows: { step: string; chunks: number; seconds: number; perSecond: number; startRssMb: number; peakRssMb: number }[] = [];
try {
  const { base } = server;
  const register = await fetch(`${base}/api/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "bench@example.com", password: "bench password" }) });
  const { token } = (await register.json()) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const created = await fetch(`${base}/api/tasks`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ name: "transfer", code: "export default (x) => x", start: true }) });
  const { task } = (await created.json()) as { task: { id: string } };
  const idleRss = rssMb(server.pid);
  peakRss = idleRss;

  // Upload: each part streamed from a generator, so the client holds one line at a time.
  const started = performance.now();
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
  const uploadMs = performance.now() - started;
  console.error(`  uploaded ${lines} lines in ${(uploadMs / 1000).toFixed(1)} s; completing them (not timed)…`);
  rows.push({ step: "upload NDJSON", chunks: lines, seconds: uploadMs / 1000, perSecond: Math.round(lines / (uploadMs / 1000)), startRssMb: Math.round(idleRss), peakRssMb: Math.round(peakRss) });

  // Complete every chunk through the db modules (not timed), then download.
  const { db, close } = createPostgresDb(url, { max: 8 });
  const volunteers = await Promise.all(Array.from({ length: 8 }, () => createVolunteer(db, { name: "v", userId: null })));
  await Promise.all(volunteers.map(async (v, shard) => {
    for (;;) {
      const leased = await leaseChunks(db, leaseRequest(v.id, { max: 512, threads: 512, graceMs: 60_000 }));
      if (leased.length === 0) return;
      await submitChunks(db, { volunteerId: v.id, shard, errors: [], results: leased.map((c) => ({ ...leaseRef(c), result: c.input, cpuMs: 1 })) });
    }
  }));
  await close();

  // The client counts lines with indexOf: it shares the cores with the server.
  for (const format of ["ndjson", "csv"] as const) {
    console.error(`  downloading ${format}…`);
    const startRss = rssMb(server.pid);
    peakRss = startRss;
    const downloadStarted = performance.now();
    const response = await fetch(`${base}/api/tasks/${task.id}/results?format=${format}`, { headers: auth });
    let received = 0;
    let bytes = 0;
    for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += part.byteLength;
      for (let at = part.indexOf(10); at !== -1; at = part.indexOf(10, at + 1)) received++;
    }
    const downloadMs = performance.now() - downloadStarted;
    const expected = format === "csv" ? lines + 1 : lines; // CSV has a header line
    if (received !== expected) throw new Error(`downloaded ${received} of ${expected} ${format} lines`);
    rows.push({ step: `download ${format.toUpperCase()} (${Math.round(bytes / 1024 / 1024)} MiB)`, chunks: lines, seconds: downloadMs / 1000, perSecond: Math.round(lines / (downloadMs / 1000)), startRssMb: Math.round(startRss), peakRssMb: Math.round(peakRss) });
  }

  console.log(`\nserver RSS when idle: ${Math.round(idleRss)} MB\n`);
  console.log("| step | chunks | seconds | chunks/s | server RSS at start (MB) | server peak RSS (MB) |\n|---|---|---|---|---|---|");
  for (const row of rows) console.log(`| ${row.step} | ${row.chunks} | ${row.seconds.toFixed(2)} | ${row.perSecond.toLocaleString("en")} | ${row.startRssMb} | ${row.peakRssMb} |`);
  console.log("\ntargets: ≥ 100,000 chunks/s each, server RSS < 200 MB");
  mkdirSync(new URL("./results", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/transfer.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), lines, idleRssMb: idleRss, rows }, null, 2));
} finally {
  clearInterval(sampler);
  await server.stop();
  await dropDatabase(adminUrl, databaseName(url));
}
