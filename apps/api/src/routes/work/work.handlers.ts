// The volunteer side of the API, its handlers: lease, results, heartbeat, release
// (docs/architecture.md, "Dispatch" and "Bounds on what one volunteer holds"). Reading and
// checking reports and lease ids is in work.reports.ts; waiting requests, lib/work-waiters.ts.
import type { leaseRequestSchema, ReleaseResponse } from "@crowdcompute/contract";
import {
  type GrantedBlock,
  heartbeatLeases,
  type LeaseRequest,
  leaseWithinBounds,
  liveReportAllowed,
  recordChunkLive,
  releaseLeaseRequest,
  releaseLeases,
  submitResults,
  sweepExpiredLeases,
} from "@crowdcompute/db";
import type { z } from "@hono/zod-openapi";
import { type AppContext, authorize, type Deps, type AppRouteHandler as Handler, volunteerRoles } from "../../lib/context.ts";
import { goneSignal, holdAnswer, nodeResponseOf } from "../../lib/held-answers.ts";
import { secondsSince } from "../../lib/metrics.ts";
import { ProblemError, tooManyRequests } from "../../lib/problem.ts";
import type { TokenClaims } from "../../lib/tokens.ts";
import { leaseSource } from "./source.ts";
import { leaseBlocksOf, liveReports, readReports, rejectedRuns } from "./work.reports.ts";
import type * as routes from "./work.routes.ts";

/**
 * A statement that lost a deadlock or serialization race after its retries (db's `retryOnDeadlockOrSerialization`)
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

type LeaseAgain = Pick<LeaseRequest, "keyClaimed" | "waiting">;
/** Who leases, and with what: all a lease needs of its request once the request is read. */
type LeaseScope = { deps: Deps; claims: TokenClaims; source: string | null };

/**
 * Leases for the request: its blocks as JSON text (see `blockJson`; `membersOf` writes the
 * answer), when to ask again, the chunks in them, and the bound that kept it from more (null
 * when none did). `again`: a waiting request leasing once more after a wake-up (its key is its
 * own already; how many others wait here).
 */
async function leaseFor(scope: LeaseScope, request: z.output<typeof leaseRequestSchema>, idempotencyKey: string | undefined, again: LeaseAgain = {}) {
  const { deps, claims, source } = scope;
  const { db, env, leaseIds } = deps;
  // Expired leases are taken back by lease requests, no daemon (docs/architecture.md, "Dispatch"):
  // at most once every 250 ms a process, counted on this volunteer's counter shard. Their
  // chunks are work again: waiting volunteers (any process) are woken.
  if ((await sweepExpiredLeases(db, claims.sub)) > 0) deps.workReady(["*"]);
  // Within the bounds on what one volunteer holds (docs/architecture.md): beyond them the
  // answer has fewer blocks or none, and says when to ask again.
  const { blocks, bounded } = await leaseWithinBounds(db, {
    ...again,
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
    silentMs: env.leaseSilentMs,
    idempotencyKey: idempotencyKey ?? null,
    source,
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
      spotChecked: block.replication > 1 && block.spotCheck < 1,
    });
    texts.push(blockJson(signed, block));
    chunks += block.n - block.reportedOffsets.length;
  }
  // A first copy of a replicated chunk out: its extra copies are work for other volunteers.
  const copiesWanted = blocks.filter((block) => block.replication > 1 && block.copy === 0).map((block) => block.taskId);
  if (copiesWanted.length > 0) deps.workReady(copiesWanted);
  return { leases: texts.join(","), retryAfterMs: blocks.length > 0 ? 0 : env.idleRetryMs, chunks, bounded };
}

/**
 * One block of the answer, written by hand: its inputs are JSON text from Postgres (checked
 * as JSON when stored) or built from a range, spliced in unparsed. Parsing them to objects
 * only for `c.json` to write them out again was the API's largest cost per chunk.
 */
function blockJson(leaseId: string, block: GrantedBlock): string {
  const reported = block.reportedOffsets.length > 0 ? `,"reportedOffsets":[${block.reportedOffsets.join(",")}]` : "";
  // A retry's checkpoint is JSON text the API checked when a heartbeat brought it: spliced as it is.
  const checkpoints = block.checkpointJson === null ? "" : `,"checkpoints":[{"offset":0,"state":${block.checkpointJson}}]`;
  return (
    `{"leaseId":${JSON.stringify(leaseId)},"taskId":${JSON.stringify(block.taskId)},"firstIndex":${block.firstIdx},"inputs":${block.inputsJson}${reported},` +
    `"deadline":"${block.deadline.toISOString()}","codeSha256":${JSON.stringify(block.codeSha256)},"wasmSha256":${JSON.stringify(block.wasmSha256)},` +
    `"timeoutMs":${block.timeoutMs},"memoryMb":${block.memoryMb},"requires":${JSON.stringify(block.requires)},"entry":"${block.entry}"${checkpoints}}`
  );
}

type LeaseAnswer = Awaited<ReturnType<typeof leaseFor>>;

/** The answer's members as JSON text; `retryAfterMs` may say to ask again at once (an answer with blocks says 0 anyway). */
const membersOf = (answer: LeaseAnswer, retryAfterMs = answer.retryAfterMs) => `"leases":[${answer.leases}],"retryAfterMs":${retryAfterMs}`;

const utf8 = new TextEncoder();
const jsonBody = (c: AppContext, text: string) => c.body(text, 200, { "content-type": "application/json" });

export const lease: Handler<typeof routes.lease> = async (c) => {
  const startedAt = performance.now();
  const claims = await authorize(c, volunteerRoles);
  const request = c.req.valid("json");
  const key = c.req.valid("header")["idempotency-key"];
  // What leasing needs of the request, so a waiting request's closure keeps these, not hono's context.
  const scope: LeaseScope = { deps: c.var.deps, claims, source: leaseSource(c, claims) };
  const answer = await retryLater(() => leaseFor(scope, request, key));
  const seconds = secondsSince(startedAt);
  const { waiters, work } = scope.deps;
  // No work now, and the volunteer may wait: held here, with no database connection, until a
  // task it may run gets work (docs/architecture.md, "Dispatch", waiting volunteers). Not past
  // a bound: what holds it back is its own, and no notification changes that.
  if (answer.chunks === 0 && answer.bounded === null && request.waitMs && waiters) {
    const first = answer;
    // On Node the answer goes straight to the node response, with no web stream, and the
    // client's going is read from it: the request's signal would make node-server build a
    // full web Request (docs/architecture.md, "Dispatch", waiting volunteers).
    const outgoing = nodeResponseOf(c.env);
    const waited = waiters.wait({
      volunteerId: claims.sub,
      source: scope.source,
      excluded: new Set(request.exclude.tasks),
      ms: request.waitMs,
      signal: outgoing ? goneSignal(outgoing) : c.req.raw.signal,
      attempt: async (waiting) => {
        const again = await retryLater(() => leaseFor(scope, request, key, { keyClaimed: key !== undefined, waiting }));
        return again.chunks > 0 ? again : null;
      },
    });
    const text = waited.then((end) => {
      let final = end.answer ?? first;
      // It waited its whole time: it may ask again at once (and wait again).
      if (!end.answer && end.why === "timeout") final = { ...first, retryAfterMs: 0 };
      work.leaseAnswered(final.chunks, seconds);
      return `{${membersOf(final)}}`;
    });
    // The headers go now and the body when the wait ends: the handler and every middleware
    // around it return at once, so a waiting request keeps its socket and the closure above
    // rather than a suspended async frame per middleware.
    if (outgoing) {
      holdAnswer(outgoing, text);
      return c.body(null, 200, { "content-type": "application/json" }) as never;
    }
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        void text.then((json) => {
          try {
            controller.enqueue(utf8.encode(json));
            controller.close();
          } catch {
            // Its client went: nobody reads the answer (what it got expires, or its key releases it).
          }
        });
      },
    });
    return c.body(body, 200, { "content-type": "application/json" }) as never;
  }
  c.var.deps.work.leaseAnswered(answer.chunks, seconds);
  return jsonBody(c, `{${membersOf(answer)}}`) as never;
};

export const results: Handler<typeof routes.results> = async (c) => {
  const startedAt = performance.now();
  const claims = await authorize(c, volunteerRoles);
  const body = c.req.valid("json");
  const reports = await readReports(c, claims, body.results);
  const outcome = await submitResults(c.var.deps.db, {
    volunteerId: claims.sub,
    userId: claims.uid ?? null,
    runs: reports.runs,
    errors: reports.errors,
    consoles: reports.consoles,
  });
  c.var.deps.taskChanged([...new Set([...reports.runs, ...reports.errors].map((item) => item.taskId))]);
  // A chunk error may be retried at once: work for waiting volunteers.
  if (reports.errors.length > 0) c.var.deps.workReady([...new Set(reports.errors.map((error) => error.taskId))]);
  const rejected = rejectedRuns(outcome.rejected, reports.blockOf);
  const rejectedChunks = rejected.reduce((n, r) => n + r.count, 0);
  let text = `"accepted":${reports.chunks - rejectedChunks},"rejected":${JSON.stringify(rejected)}`;
  let leased = 0;
  if (body.next) {
    // The reports are answered now, never held: a volunteer that would wait is told to ask
    // again at once, with a lease request, which waits (docs/architecture.md, "Dispatch").
    const answer = await leaseFor({ deps: c.var.deps, claims, source: leaseSource(c, claims) }, body.next, c.req.valid("header")["idempotency-key"]);
    text += `,${body.next.waitMs && c.var.deps.waiters ? membersOf(answer, 0) : membersOf(answer)}`;
    leased = answer.chunks;
  }
  c.var.deps.work.resultsAnswered({ accepted: reports.chunks - rejectedChunks, rejected: rejectedChunks, leased }, secondsSince(startedAt));
  return jsonBody(c, `{${text}}`) as never;
};

export const heartbeat: Handler<typeof routes.heartbeat> = async (c) => {
  const claims = await authorize(c, volunteerRoles);
  const { db, env } = c.var.deps;
  const body = c.req.valid("json");
  const blocks = await leaseBlocksOf(c, claims, body.leaseIds, "leaseIds");
  const rowOf = new Map([...blocks].map(([leaseId, block]) => [leaseId, block.leaseRowId]));
  // Checked whole before anything is written: a refused beat extends nothing.
  const live = liveReports(body, blocks);
  // Progress and checkpoints at most every 500 ms a volunteer (the page sends them at most once a
  // second): the write rate stays bounded (docs/architecture.md, "Progress, console and checkpoints").
  if (live.length > 0 && !liveReportAllowed(db, claims.sub)) {
    throw tooManyRequests("this volunteer sent progress or checkpoints less than 500 ms ago: send them at most once a second", 1000);
  }
  const outcome = await retryLater(() => heartbeatLeases(db, { volunteerId: claims.sub, leaseRowIds: [...new Set(rowOf.values())], graceMs: env.leaseGraceMs, silentMs: env.leaseSilentMs }));
  if (live.length > 0) {
    const changed = await retryLater(() => recordChunkLive(db, { volunteerId: claims.sub, reports: live }));
    if (changed.length > 0) c.var.deps.taskChanged(changed);
  }
  const stateOf = new Map<number, "extended" | "lost" | "cancelled">();
  for (const state of ["extended", "lost", "cancelled"] as const) for (const row of outcome[state]) stateOf.set(row, state);
  const response = { extended: [] as string[], lost: [] as string[], cancelled: [] as string[] };
  for (const [leaseId, row] of rowOf) response[stateOf.get(row) ?? "lost"].push(leaseId);
  return c.json(response, 200);
};

export const release: Handler<typeof routes.release> = async (c) => {
  const claims = await authorize(c, volunteerRoles);
  const { leaseIds, leaseRequestKey } = c.req.valid("json");
  const blocks = await leaseBlocksOf(c, claims, leaseIds, "leaseIds");
  const rows = [...blocks.values()].map((block) => block.leaseRowId);
  const released = new Set(await retryLater(() => releaseLeases(c.var.deps.db, { volunteerId: claims.sub, leaseRowIds: rows })));
  const response: ReleaseResponse = { released: [], unknown: [] };
  const changed = new Set<string>();
  for (const [leaseId, block] of blocks) {
    const taken = released.has(block.leaseRowId);
    response[taken ? "released" : "unknown"].push(leaseId);
    if (taken) changed.add(block.taskId);
  }
  if (leaseRequestKey !== undefined) {
    const ofRequest = await retryLater(() => releaseLeaseRequest(c.var.deps.db, { volunteerId: claims.sub, key: leaseRequestKey }));
    response.requestReleased = ofRequest.length;
    for (const { taskId } of ofRequest) changed.add(taskId);
  }
  if (changed.size > 0) {
    c.var.deps.taskChanged([...changed]);
    c.var.deps.workReady([...changed]); // the released chunks are pending again
  }
  return c.json(response, 200);
};
