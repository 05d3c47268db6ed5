import {
  heartbeatRequestSchema,
  heartbeatResponseSchema,
  leaseRequestSchema,
  leaseResponseSchema,
  MAX_CHECKPOINT_CHARS,
  MAX_RESULT_BYTES,
  type ReleaseResponse,
  releaseRequestSchema,
  releaseResponseSchema,
  resultsRequestSchema,
  resultsResponseSchema,
} from "@crowdcompute/contract";
import {
  type ChunkError,
  type ConsoleReport,
  heartbeatLeases,
  type LeasedBlock,
  type LiveChunkReport,
  leaseWithinBounds,
  oneBeatAtATime,
  type ResultRun,
  recordChunkLive,
  releaseLeaseRequest,
  releaseLeases,
  submitResults,
  sweepExpiredLeases,
} from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import canonicalize from "canonicalize";
import type { MiddlewareHandler } from "hono";
import { type AppBindings, type AppContext, authorize, createRouter, volunteerRoles } from "../../lib/context.ts";
import { jsonLimitProblem, jsonTextTooDeep, jsonViolation, maxBodyDepth, maxJsonDepth } from "../../lib/json-limits.ts";
import type { LeaseBlock } from "../../lib/lease-ids.ts";
import { secondsSince } from "../../lib/metrics.ts";
import { forbidden, ProblemError, tooManyRequests, unprocessable } from "../../lib/problem.ts";
import type { TokenClaims } from "../../lib/tokens.ts";
import { leaseSource } from "./source.ts";

// A string of n UTF-16 units is at most 3n bytes of UTF-8: only long results need encoding.
const utf8 = new TextEncoder();
const exceedsResultBytes = (json: string) => json.length > MAX_RESULT_BYTES / 3 && utf8.encode(json).length > MAX_RESULT_BYTES;

// Printable ASCII, as RFC 9110 field values allow and a UUID or a random token needs.
const idempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, "1 to 200 printable ASCII characters")
    .optional()
    .openapi({
      description:
        "A repeat of a lease request with the same key (per volunteer: its 32 newest keys, for at most a day) returns the blocks the first one got, less the chunks reported or taken back since",
    }),
});

const lease = createRoute({
  method: "post",
  path: "/api/work/lease",
  summary: "Lease blocks of chunks, sized to keep the volunteer busy for bufferMs",
  request: { headers: idempotencyHeaders, body: { content: { "application/json": { schema: leaseRequestSchema } }, required: true } },
  responses: { 200: { description: "blocks, or none and when to ask again", content: { "application/json": { schema: leaseResponseSchema } } } },
});

const results = createRoute({
  method: "post",
  path: "/api/work/results",
  summary: "Report results and errors per block (a block may come in parts); with `next`, lease the following blocks in the same round trip",
  request: { headers: idempotencyHeaders, body: { content: { "application/json": { schema: resultsRequestSchema } }, required: true } },
  responses: { 200: { description: "what was accepted", content: { "application/json": { schema: resultsResponseSchema } } } },
});

const heartbeat = createRoute({
  method: "post",
  path: "/api/work/heartbeat",
  summary: "Keep blocks alive while their chunks run; learn which were lost or cancelled",
  request: { body: { content: { "application/json": { schema: heartbeatRequestSchema } }, required: true } },
  responses: { 200: { description: "each lease id, by what became of it", content: { "application/json": { schema: heartbeatResponseSchema } } } },
});

const release = createRoute({
  method: "post",
  path: "/api/work/release",
  summary: "Give blocks back before their deadline (the volunteer paused): their unreported chunks go to others at once",
  request: { body: { content: { "application/json": { schema: releaseRequestSchema } }, required: true } },
  responses: { 200: { description: "which blocks were taken back", content: { "application/json": { schema: releaseResponseSchema } } } },
});

/**
 * A statement that lost a deadlock or serialization race after its retries (db's `withRetry`)
 * is a 503 with Retry-After, never a 500: nothing it did was committed, and the client's retry
 * meets the rows free (docs/architecture.md, "Bounds on what one volunteer holds").
 */
async function retryLater<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
      if (e.code === "40P01" || e.code === "40001" || e.code === "55P03") {
        throw new ProblemError(503, "Service unavailable", "the database gave up a race with another request of yours; retry shortly", undefined, { "retry-after": "1" });
      }
    }
    throw error;
  }
}

/** A stable counter shard per volunteer, so concurrent volunteers update different rows. */
const shardOf = (volunteerId: string) => parseInt(volunteerId.slice(-4), 16) % 16;

/** Leases for the request: the answer's members as JSON text (see `blockJson`) and the chunks in them. */
async function leaseFor(c: AppContext, claims: TokenClaims, request: z.output<typeof leaseRequestSchema>, idempotencyKey: string | undefined) {
  const { db, env, leaseIds } = c.var.deps;
  await sweepExpiredLeases(db, shardOf(claims.sub));
  // Within the bounds on what one volunteer holds (docs/architecture.md): beyond them the
  // answer has fewer blocks or none, and says when to ask again.
  const { blocks } = await leaseWithinBounds(db, {
    volunteerId: claims.sub,
    userId: claims.uid ?? null,
    max: request.max,
    bufferMs: request.bufferMs,
    threads: request.capabilities.threads,
    cpuPercent: request.capabilities.cpuPercent,
    webgpu: request.capabilities.webgpu,
    excludeTasks: request.exclude.tasks,
    excludeCreators: request.exclude.creators,
    graceMs: env.leaseGraceMs,
    idempotencyKey: idempotencyKey ?? null,
    source: leaseSource(c, claims),
    bounds: env.leaseBounds,
  });
  const texts: string[] = [];
  let chunks = 0;
  for (const block of blocks) {
    const signed = await leaseIds.encodeBlock({
      leaseRowId: block.leaseRowId,
      taskId: block.taskId,
      volunteerId: claims.sub,
      copy: block.copy,
      firstIdx: block.firstIdx,
      n: block.n,
      replicated: block.replication > 1,
    });
    texts.push(blockJson(signed, block));
    chunks += block.n - block.reportedOffsets.length;
  }
  return { members: `"leases":[${texts.join(",")}],"retryAfterMs":${blocks.length > 0 ? 0 : env.idleRetryMs}`, chunks };
}

/**
 * One block of the answer, written by hand: its inputs are JSON text from Postgres (checked
 * as JSON when stored) or built from a range, spliced in unparsed. Parsing them to objects
 * only for `c.json` to write them out again was the API's largest cost per chunk.
 */
function blockJson(leaseId: string, block: LeasedBlock): string {
  const reported = block.reportedOffsets.length > 0 ? `,"reportedOffsets":[${block.reportedOffsets.join(",")}]` : "";
  // A retry's checkpoint is JSON text the API checked when a heartbeat brought it: spliced as it is.
  const checkpoints = block.checkpointJson === null ? "" : `,"checkpoints":[{"offset":0,"state":${block.checkpointJson}}]`;
  return (
    `{"leaseId":${JSON.stringify(leaseId)},"taskId":${JSON.stringify(block.taskId)},"firstIndex":${block.firstIdx},"inputs":${block.inputsJson}${reported},` +
    `"deadline":"${block.deadline.toISOString()}","codeSha256":${JSON.stringify(block.codeSha256)},"wasmSha256":${JSON.stringify(block.wasmSha256)},` +
    `"timeoutMs":${block.timeoutMs},"memoryMb":${block.memoryMb},"requires":${JSON.stringify(block.requires)},"entry":"${block.entry}"${checkpoints}}`
  );
}

const jsonBody = (c: AppContext, text: string) => c.body(text, 200, { "content-type": "application/json" });

type Report = z.output<typeof resultsRequestSchema>["results"][number];

/**
 * Turns verified block reports into runs of results and chunk errors. Every id is checked,
 * and every offset, before anything is written: one forged or foreign id, an offset outside
 * its block or an offset given twice in one request rejects the whole request.
 */
async function readReports(c: AppContext, claims: TokenClaims, reports: Report[]) {
  const decode = c.var.deps.leaseIds.decoder();
  const runs: ResultRun[] = [];
  const errors: ChunkError[] = [];
  const consoles: ConsoleReport[] = [];
  const blockOf = new Map<number, { leaseId: string; firstIdx: number }>();
  const taken = new Map<number, Uint8Array>();
  let chunks = 0;
  for (const [position, report] of reports.entries()) {
    const block = await decode(report.leaseId);
    if (!block) throw unprocessable(`results.${position}.leaseId is not a lease id this server issued`, [{ path: `results.${position}.leaseId`, message: "invalid lease id" }]);
    if (block.volunteerId !== claims.sub) throw forbidden(`results.${position}.leaseId was issued to another volunteer`);
    blockOf.set(block.leaseRowId, { leaseId: report.leaseId, firstIdx: block.firstIdx });
    const offsets = [...report.results.keys()].map((k) => report.offset + k).concat(report.errors.map((e) => e.offset));
    takeOffsets(taken, block, offsets, position);
    chunks += offsets.length;
    if (report.results.length > 0) {
      runs.push({
        leaseRowId: block.leaseRowId,
        taskId: block.taskId,
        firstIdx: block.firstIdx,
        offset: report.offset,
        count: report.results.length,
        resultsJson: resultsJson(report, block, position),
        cpuMs: report.cpuMs,
      });
    }
    for (const error of report.errors) {
      errors.push({ leaseRowId: block.leaseRowId, taskId: block.taskId, index: block.firstIdx + error.offset, kind: error.kind, message: error.message, cpuMs: 0 });
    }
    if (report.console) consoles.push(...consoleOf(report, block, position));
  }
  return { runs, errors, consoles, blockOf, chunks };
}

/**
 * A report's console output, each chunk's with the outcome it came with: a chunk's lines ride
 * with its own result or error in the same report (422 otherwise, or for a chunk given twice).
 */
function consoleOf(report: Report, block: LeaseBlock, position: number): ConsoleReport[] {
  const erred = new Set(report.errors.map((error) => error.offset));
  const seen = new Set<number>();
  return (report.console ?? []).map((logged, k) => {
    const done = logged.offset >= report.offset && logged.offset < report.offset + report.results.length;
    if ((!done && !erred.has(logged.offset)) || seen.has(logged.offset)) {
      throw unprocessable(`results.${position}.console.${k}: offset ${logged.offset} has no result or error in this report, or is given twice`, [
        { path: `results.${position}.console.${k}.offset`, message: "a chunk's console comes with its own result or error, once" },
      ]);
    }
    seen.add(logged.offset);
    return {
      leaseRowId: block.leaseRowId,
      taskId: block.taskId,
      index: block.firstIdx + logged.offset,
      outcome: done ? "done" : "error",
      linesJson: JSON.stringify(logged.lines),
      truncated: logged.truncated === true,
    };
  });
}

/** Marks the offsets as reported in this request; 422 for one outside the block or given twice. */
function takeOffsets(taken: Map<number, Uint8Array>, block: LeaseBlock, offsets: number[], position: number): void {
  let marks = taken.get(block.leaseRowId);
  if (!marks) taken.set(block.leaseRowId, (marks = new Uint8Array(block.n)));
  for (const offset of offsets) {
    if (offset >= block.n) {
      throw unprocessable(`results.${position}: offset ${offset} is outside its block of ${block.n} chunks`, [{ path: `results.${position}`, message: `offsets run 0..${block.n - 1}` }]);
    }
    if (marks[offset])
      throw unprocessable(`results.${position}: offset ${offset} of this block is reported twice in one request`, [{ path: `results.${position}`, message: "each offset at most once per request" }]);
    marks[offset] = 1;
  }
}

/**
 * The report's results as one JSON array text, the form they are stored in. A replicated
 * task's copies are compared by the hash of each result's RFC 8785 canonical JSON, so theirs
 * is canonical (keys sorted); any other task's is JSON.stringify's (the work function's key
 * order), which costs a fifth of the canonicalize library and a fraction of its garbage
 * (3.2 vs 0.65 ms for 4096 small objects), the API's largest cost per chunk. 413 for any
 * result over 1 MiB.
 */
function resultsJson(report: Report, block: LeaseBlock, position: number): string {
  const serialize = block.replicated ? (value: unknown) => canonicalize(value) ?? "null" : (value: unknown) => JSON.stringify(value) ?? "null";
  const json = serialize(report.results);
  // Under the limit as a whole, each result is too.
  if (!exceedsResultBytes(json)) return json;
  for (const [k, result] of report.results.entries()) {
    if (exceedsResultBytes(serialize(result))) {
      throw new ProblemError(413, "Payload too large", `results.${position}.results.${k} is larger than 1 MiB`, [{ path: `results.${position}.results.${k}`, message: "at most 1 MiB of JSON" }]);
    }
  }
  return json;
}

/**
 * Bodies nested deeper than the JSON limits are refused before they are parsed into values:
 * a result nested 150,000 levels deep once got past the API and wedged its task's reduce. The
 * scan reads the text once (hono keeps it for the validator's parse).
 */
const boundDepth: MiddlewareHandler<AppBindings> = async (c, next) => {
  const at = jsonTextTooDeep(await c.req.text(), maxBodyDepth);
  if (at >= 0) {
    throw unprocessable(`the body is nested deeper than ${maxBodyDepth} levels of arrays and objects (at character ${at + 1}): a result or input may nest ${maxJsonDepth}`, [
      { path: "body", message: `nested deeper than ${maxBodyDepth} levels` },
    ]);
  }
  await next();
};

/**
 * A volunteer's heartbeats are handled one at a time in this process (one more may wait), from
 * before the body is read (docs/architecture.md, "Bounds on what one volunteer holds"). Beats
 * of one block wait on each other's row locks in Postgres, each holding a pooled connection:
 * sixteen at once, with checkpoints, took the pool from everyone else. Beyond that, a 429 with
 * Retry-After, before the body is parsed; the page and the CLI send one beat at a time.
 */
const oneBeatAtATimePerVolunteer: MiddlewareHandler<AppBindings> = async (c, next) => {
  const claims = await authorize(c, volunteerRoles);
  const turn = oneBeatAtATime(c.var.deps.db, claims.sub, () => next());
  if (!turn) throw tooManyRequests("this volunteer's previous heartbeats are still being handled: send one at a time", 1000);
  await turn;
};

const router = createRouter();
router.use("/api/work/heartbeat", oneBeatAtATimePerVolunteer);
router.use("/api/work/*", boundDepth);

export const workRoutes = router
  .openapi(lease, async (c) => {
    const startedAt = performance.now();
    const claims = await authorize(c, volunteerRoles);
    const answer = await retryLater(() => leaseFor(c, claims, c.req.valid("json"), c.req.valid("header")["idempotency-key"]));
    c.var.deps.work.leaseAnswered(answer.chunks, secondsSince(startedAt));
    return jsonBody(c, `{${answer.members}}`) as never;
  })
  .openapi(results, async (c) => {
    const startedAt = performance.now();
    const claims = await authorize(c, volunteerRoles);
    const body = c.req.valid("json");
    const reports = await readReports(c, claims, body.results);
    const outcome = await submitResults(c.var.deps.db, {
      volunteerId: claims.sub,
      userId: claims.uid ?? null,
      shard: shardOf(claims.sub),
      runs: reports.runs,
      errors: reports.errors,
      consoles: reports.consoles,
    });
    c.var.deps.taskChanged([...new Set([...reports.runs, ...reports.errors].map((item) => item.taskId))]);
    const rejected = rejectedRuns(outcome.rejected, reports.blockOf);
    const rejectedChunks = rejected.reduce((n, r) => n + r.count, 0);
    let text = `"accepted":${reports.chunks - rejectedChunks},"rejected":${JSON.stringify(rejected)}`;
    let leased = 0;
    if (body.next) {
      const answer = await leaseFor(c, claims, body.next, c.req.valid("header")["idempotency-key"]);
      text += `,${answer.members}`;
      leased = answer.chunks;
    }
    c.var.deps.work.resultsAnswered({ accepted: reports.chunks - rejectedChunks, rejected: rejectedChunks, leased }, secondsSince(startedAt));
    return jsonBody(c, `{${text}}`) as never;
  })
  .openapi(heartbeat, async (c) => {
    const claims = await authorize(c, volunteerRoles);
    const { db, env } = c.var.deps;
    const body = c.req.valid("json");
    const blocks = await leaseBlocksOf(c, claims, body.leaseIds, "leaseIds");
    const rowOf = new Map([...blocks].map(([leaseId, block]) => [leaseId, block.leaseRowId]));
    // Checked whole before anything is written: a refused beat extends nothing.
    const live = liveReports(body, blocks);
    const outcome = await retryLater(() => heartbeatLeases(db, { volunteerId: claims.sub, leaseRowIds: [...new Set(rowOf.values())], graceMs: env.leaseGraceMs }));
    if (live.length > 0) {
      const changed = await retryLater(() => recordChunkLive(db, { volunteerId: claims.sub, reports: live }));
      if (changed.length > 0) c.var.deps.taskChanged(changed);
    }
    const stateOf = new Map<number, "extended" | "lost" | "cancelled">();
    for (const state of ["extended", "lost", "cancelled"] as const) for (const row of outcome[state]) stateOf.set(row, state);
    const response = { extended: [] as string[], lost: [] as string[], cancelled: [] as string[] };
    for (const [leaseId, row] of rowOf) response[stateOf.get(row) ?? "lost"].push(leaseId);
    return c.json(response, 200);
  })
  .openapi(release, async (c) => {
    const claims = await authorize(c, volunteerRoles);
    const { leaseIds, leaseRequestKey } = c.req.valid("json");
    const blocks = await leaseBlocksOf(c, claims, leaseIds, "leaseIds");
    const rows = [...blocks.values()].map((block) => block.leaseRowId);
    const released = new Set(await retryLater(() => releaseLeases(c.var.deps.db, { volunteerId: claims.sub, leaseRowIds: rows, shard: shardOf(claims.sub) })));
    const response: ReleaseResponse = { released: [], unknown: [] };
    const changed = new Set<string>();
    for (const [leaseId, block] of blocks) {
      const taken = released.has(block.leaseRowId);
      response[taken ? "released" : "unknown"].push(leaseId);
      if (taken) changed.add(block.taskId);
    }
    if (leaseRequestKey !== undefined) {
      const ofRequest = await retryLater(() => releaseLeaseRequest(c.var.deps.db, { volunteerId: claims.sub, key: leaseRequestKey, shard: shardOf(claims.sub) }));
      response.requestReleased = ofRequest.length;
      for (const { taskId } of ofRequest) changed.add(taskId);
    }
    if (changed.size > 0) c.var.deps.taskChanged([...changed]);
    return c.json(response, 200);
  });

/** Every lease id of a request, verified and the caller's: 422 for one this server did not issue, 403 for another volunteer's. */
async function leaseBlocksOf(c: AppContext, claims: TokenClaims, leaseIds: string[], field: string): Promise<Map<string, LeaseBlock>> {
  const decode = c.var.deps.leaseIds.decoder();
  const blocks = new Map<string, LeaseBlock>();
  for (const [position, leaseId] of leaseIds.entries()) {
    const block = await decode(leaseId);
    if (!block) throw unprocessable(`${field}.${position} is not a lease id this server issued`, [{ path: `${field}.${position}`, message: "invalid lease id" }]);
    if (block.volunteerId !== claims.sub) throw forbidden(`${field}.${position} was issued to another volunteer`);
    blocks.set(leaseId, block);
  }
  return blocks;
}

type Heartbeat = z.output<typeof heartbeatRequestSchema>;

/**
 * A heartbeat's progress and checkpoints as one report per chunk. Each lease id must be one of
 * the beat's own `leaseIds` (so verified and the caller's), each offset inside its block and
 * given once per kind; a checkpoint's state at most 256 KiB of JSON text, 64 levels deep. 422
 * (413 for size) otherwise. Whether the volunteer still holds the chunk is the database's check.
 */
function liveReports(body: Heartbeat, blocks: Map<string, LeaseBlock>): LiveChunkReport[] {
  const reports = new Map<string, LiveChunkReport>();
  const entry = (field: "progress" | "checkpoints", leaseId: string, offset: number, k: number): LiveChunkReport => {
    const block = blocks.get(leaseId);
    const path = `${field}.${leaseId}.${k}`;
    if (!block) throw unprocessable(`${field} names a lease id that is not among this heartbeat's leaseIds`, [{ path: `${field}.${leaseId}`, message: "not in leaseIds" }]);
    if (offset >= block.n) throw unprocessable(`${path}: offset ${offset} is outside its block of ${block.n} chunks`, [{ path, message: `offsets run 0..${block.n - 1}` }]);
    const key = `${block.leaseRowId}:${offset}`;
    let report = reports.get(key);
    if (!report) reports.set(key, (report = { leaseRowId: block.leaseRowId, offset }));
    const given = field === "progress" ? report.fraction !== undefined : report.checkpointJson !== undefined;
    if (given) throw unprocessable(`${path}: offset ${offset} is given twice`, [{ path, message: "each offset at most once" }]);
    return report;
  };
  for (const [leaseId, list] of Object.entries(body.progress ?? {})) {
    for (const [k, progress] of list.entries()) {
      const report = entry("progress", leaseId, progress.offset, k);
      report.fraction = progress.fraction;
      if (progress.message !== undefined) report.message = progress.message;
    }
  }
  for (const [leaseId, list] of Object.entries(body.checkpoints ?? {})) {
    for (const [k, checkpoint] of list.entries()) {
      const report = entry("checkpoints", leaseId, checkpoint.offset, k);
      const path = `checkpoints.${leaseId}.${k}.state`;
      const violation = jsonViolation(checkpoint.state, { maxDepth: maxJsonDepth, path });
      if (violation) throw jsonLimitProblem(violation);
      const json = JSON.stringify(checkpoint.state) ?? "null";
      if (json.length > MAX_CHECKPOINT_CHARS) {
        throw new ProblemError(413, "Payload too large", `${path} is ${json.length} characters of JSON; a checkpoint may be at most ${MAX_CHECKPOINT_CHARS}`, [
          { path, message: `at most ${MAX_CHECKPOINT_CHARS} characters of JSON` },
        ]);
      }
      report.checkpointJson = json;
    }
  }
  return [...reports.values()];
}

/** The db's rejections (runs, or single chunks from the per-chunk path) as the wire's, adjacent ones merged. */
function rejectedRuns(rejected: { leaseRowId: number; index: number; count: number; reason: string }[], blockOf: Map<number, { leaseId: string; firstIdx: number }>) {
  const out: { leaseId: string; offset: number; count: number; reason: string }[] = [];
  const sorted = [...rejected].sort((a, b) => a.leaseRowId - b.leaseRowId || a.index - b.index);
  for (const r of sorted) {
    const block = blockOf.get(r.leaseRowId)!;
    const offset = r.index - block.firstIdx;
    const last = out.at(-1);
    if (last && last.leaseId === block.leaseId && last.reason === r.reason && last.offset + last.count === offset) last.count += r.count;
    else out.push({ leaseId: block.leaseId, offset, count: r.count, reason: r.reason });
  }
  return out;
}
