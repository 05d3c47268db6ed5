// Leasing for a lease request, as the lease handler, a waiting request's attempts and the
// results request's `next` do it: the blocks within the volunteer's bounds, written as the
// answer's JSON text (docs/architecture.md, "Dispatch").
import type { leaseRequestSchema } from "@crowdcompute/contract";
import { type GrantedBlock, type LeaseRequest, leaseWithinBounds, sweepExpiredLeases } from "@crowdcompute/db";
import type { z } from "@hono/zod-openapi";
import type { Deps } from "../../lib/context.ts";
import { ProblemError } from "../../lib/problem.ts";
import type { TokenClaims } from "../../lib/tokens.ts";

/**
 * A statement that lost a deadlock or serialization race after its retries (db's `retryOnDeadlockOrSerialization`)
 * is a 503 with Retry-After, never a 500: nothing it did was committed, and the client's retry
 * meets the rows free (docs/architecture.md, "Bounds on what one volunteer holds").
 */
export async function retryLater<T>(run: () => Promise<T>): Promise<T> {
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

/**
 * Released chunks of `taskIds` are pending again: their tasks' followers hear of it, and
 * volunteers waiting for work (any process) are woken to take them.
 */
export function chunksReleased(deps: Pick<Deps, "taskChanged" | "workReady">, taskIds: Iterable<string>): void {
  const tasks = [...new Set(taskIds)];
  if (tasks.length === 0) return;
  deps.taskChanged(tasks);
  deps.workReady(tasks);
}

export type LeaseAgain = Pick<LeaseRequest, "keyClaimed" | "waiting">;
/** Who leases, and with what: all a lease needs of its request once the request is read. */
export type LeaseScope = { deps: Deps; claims: TokenClaims; source: string | null };

/**
 * Leases for the request: its blocks as JSON text (see `blockJson`; `membersOf` writes the
 * answer), their lease rows and tasks, when to ask again, the chunks in them, and the bound
 * that kept it from more (null when none did). `again`: a waiting request leasing once more after a wake-up (its key is its
 * own already; how many others wait here).
 */
export async function leaseFor(scope: LeaseScope, request: z.output<typeof leaseRequestSchema>, idempotencyKey: string | undefined, again: LeaseAgain = {}) {
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
  return { leases: texts.join(","), granted: blocks, retryAfterMs: blocks.length > 0 ? 0 : env.idleRetryMs, chunks, bounded };
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

export type LeaseAnswer = Awaited<ReturnType<typeof leaseFor>>;

/** The answer's members as JSON text; `retryAfterMs` may say to ask again at once (an answer with blocks says 0 anyway). */
export const membersOf = (answer: LeaseAnswer, retryAfterMs = answer.retryAfterMs) => `"leases":[${answer.leases}],"retryAfterMs":${retryAfterMs}`;
