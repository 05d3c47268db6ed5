// The volunteer side of the API, its handlers: lease, results, heartbeat, release
// (docs/architecture.md, "Dispatch" and "Bounds on what one volunteer holds"). Reading and
// checking reports and lease ids is in work.reports.ts; leasing, work.lease.ts; a waiting request,
// held-lease.ts (held by lib/work-waiters.ts).
import type { ReleaseResponse } from "@crowdcompute/contract";
import { heartbeatLeases, liveReportAllowed, recordChunkLive, releaseLeaseRequest, releaseLeases, submitResults } from "@crowdcompute/db";
import { type AppContext, authorize, type AppRouteHandler as Handler, volunteerRoles } from "../../lib/context.ts";
import { HeldBody, holdAnswer, nodeResponseOf } from "../../lib/held-answers.ts";
import { secondsSince } from "../../lib/metrics.ts";
import { tooManyRequests } from "../../lib/problem.ts";
import type { WorkWaiters } from "../../lib/work-waiters.ts";
import { HeldLease } from "./held-lease.ts";
import { leaseSource } from "./source.ts";
import { chunksReleased, type LeaseAnswer, type LeaseScope, leaseFor, membersOf, retryLater } from "./work.lease.ts";
import { leaseBlocksOf, liveReports, readReports, rejectedRuns } from "./work.reports.ts";
import type * as routes from "./work.routes.ts";

const utf8 = new TextEncoder();
const jsonBody = (c: AppContext, text: string) => c.body(text, 200, { "content-type": "application/json" });

export const lease: Handler<typeof routes.lease> = async (c) => {
  const startedAt = performance.now();
  const claims = await authorize(c, volunteerRoles);
  const request = c.req.valid("json");
  const key = c.req.valid("header")["idempotency-key"];
  // What leasing needs of the request, so a waiting request (HeldLease) keeps these, not hono's context.
  const scope: LeaseScope = { deps: c.var.deps, claims, source: leaseSource(c, claims) };
  const waiters = request.waitMs ? scope.deps.waiters : null;
  // A request that may wait leases as it arrives, unless LEASE_ARRIVING_MAX do already (a herd):
  // then it is held at once and leases in turn, rather than queue on the pool with a suspended
  // frame per middleware (docs/architecture.md, "Dispatch", waiting volunteers).
  const arrived = waiters?.arrive();
  if (waiters && arrived === null) {
    return holdLease(c, waiters, (body) => new HeldLease(scope, request, key, body, startedAt, null), true);
  }
  let answer: LeaseAnswer;
  try {
    answer = await retryLater(() => leaseFor(scope, request, key));
  } finally {
    arrived?.();
  }
  // No work now, and the volunteer may wait: held here, with no database connection, until a
  // task it may run gets work (docs/architecture.md, "Dispatch", waiting volunteers). Not past
  // a bound: what holds it back is its own, and no notification changes that.
  if (waiters && answer.chunks === 0 && answer.bounded === null) {
    return holdLease(c, waiters, (body) => new HeldLease(scope, request, key, body, startedAt, answer), false);
  }
  c.var.deps.work.leaseAnswered(answer.chunks, secondsSince(startedAt));
  return jsonBody(c, `{${membersOf(answer)}}`) as never;
};

/**
 * Holds the request made by `lease` with its body (`arriving`: before its first lease) and
 * answers hono at once; the answer is written when its wait ends.
 */
function holdLease(c: AppContext, waiters: WorkWaiters, lease: (body: Pick<HeldBody, "send">) => HeldLease, arriving: boolean): never {
  const hold = (held: HeldLease) => (arriving ? waiters.holdArriving(held) : waiters.hold(held));
  // On Node the answer goes straight to the node response, with no web stream, and the
  // client's going is read from it: the request's signal would make node-server build a
  // full web Request (docs/architecture.md, "Dispatch", waiting volunteers).
  const outgoing = nodeResponseOf(c.env);
  if (outgoing) {
    const body = new HeldBody();
    const held = lease(body);
    hold(held);
    // Its client went: the wait ends (a client gone already goes at once).
    if (outgoing.destroyed) waiters.leave(held);
    else
      outgoing.once("close", () => {
        if (!outgoing.writableFinished) waiters.leave(held);
      });
    // The headers go now and the body when the wait ends: the handler and every middleware
    // around it return at once, so a waiting request keeps its socket and `held` rather
    // than a suspended async frame per middleware.
    holdAnswer(outgoing, body);
    return c.body(null, 200, { "content-type": "application/json" }) as never;
  }
  let stream!: ReadableStreamDefaultController<Uint8Array>;
  const sent = new ReadableStream<Uint8Array>({
    start(controller) {
      stream = controller;
    },
  });
  const held = lease({
    send(json) {
      try {
        stream.enqueue(utf8.encode(json));
        stream.close();
      } catch {
        // Its client went: nobody reads the answer (what it got expires, or its key releases it).
      }
    },
  });
  const signal = c.req.raw.signal;
  signal.addEventListener("abort", () => waiters.leave(held), { once: true });
  hold(held);
  if (signal.aborted) waiters.leave(held);
  return c.body(sent, 200, { "content-type": "application/json" }) as never;
}

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
  chunksReleased(c.var.deps, changed);
  return c.json(response, 200);
};
