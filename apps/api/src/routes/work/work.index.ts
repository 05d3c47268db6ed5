import { createRoute, z } from "@hono/zod-openapi";
import canonicalize from "canonicalize";
import { heartbeatLeases, leaseChunks, reclaimExpiredLeases, submitChunks, type ChunkError, type ChunkResult, type LeasedChunk } from "@crowdcompute/db";
import { authorize, createRouter, volunteerRoles, type AppContext } from "../../lib/context.ts";
import type { TokenClaims } from "../../lib/tokens.ts";
import { secondsSince } from "../../lib/metrics.ts";
import { forbidden, ProblemError, unprocessable } from "../../lib/problem.ts";

export const maxLeaseBatch = 64;
export const maxResultBytes = 1024 * 1024;
// A string of n UTF-16 units is at most 3n bytes of UTF-8: only long results need encoding.
const utf8 = new TextEncoder();
const maxErrorMessage = 4096;

const uuid = z.uuid();
const leaseRequest = z
  .object({
    max: z.number().int().min(1).max(maxLeaseBatch).default(16),
    capabilities: z
      .object({
        webgpu: z.boolean().default(false),
        threads: z.number().int().min(1).max(256).default(1),
        cpuPercent: z.number().int().min(1).max(100).default(100),
      })
      .strict()
      .default({ webgpu: false, threads: 1, cpuPercent: 100 }),
    exclude: z
      .object({ tasks: z.array(uuid).max(1000).default([]), creators: z.array(uuid).max(1000).default([]) })
      .strict()
      .default({ tasks: [], creators: [] }),
  })
  .strict();

const leaseSchema = z.object({
  leaseId: z.string(),
  taskId: z.string(),
  index: z.number(),
  input: z.unknown(),
  deadline: z.string(),
  codeSha256: z.string(),
  wasmSha256: z.string().nullable(),
  timeoutMs: z.number(),
  requires: z.object({ webgpu: z.boolean().optional() }),
  entry: z.enum(["work", "reduce"]),
});
const leaseResponse = z.object({ leases: z.array(leaseSchema), retryAfterMs: z.number() });

const resultItem = z
  .object({
    leaseId: z.string().min(1).max(200),
    result: z.unknown().optional(),
    error: z
      .object({ kind: z.enum(["throw", "timeout", "oom", "invalid-result"]), message: z.string().max(maxErrorMessage) })
      .strict()
      .optional(),
    cpuMs: z.number().min(0).max(1e9).default(0),
  })
  .strict()
  .refine((item) => ("result" in item) !== (item.error !== undefined), { message: "give exactly one of `result` or `error`" });

const resultsRequest = z
  .object({ results: z.array(resultItem).min(1).max(256), next: leaseRequest.optional() })
  .strict();

const resultsResponse = z.object({
  accepted: z.number(),
  rejected: z.array(
    z.object({
      leaseId: z.string(),
      reason: z.string().openapi({
        description:
          "task-cancelled (or not started), task-unknown, chunk-failed (already failed for good), or chunk-reissued (a reduce chunk whose inputs changed after this copy was leased); drop the chunk and go on",
      }),
    }),
  ),
  leases: z.array(leaseSchema).optional(),
  retryAfterMs: z.number().optional(),
});

const heartbeatRequest = z
  .object({
    leaseIds: z.array(z.string().min(1).max(200)).min(1).max(256),
    progress: z.record(z.string(), z.number().min(0).max(1)).optional(),
  })
  .strict();

const heartbeatResponse = z.object({ extended: z.array(z.string()), lost: z.array(z.string()), cancelled: z.array(z.string()) });

// Printable ASCII, as RFC 9110 field values allow and a UUID or a random token needs.
const idempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, "1 to 200 printable ASCII characters")
    .optional()
    .openapi({ description: "A repeat of a lease request with the same key (per volunteer, for a day) returns the leases the first one got, less those reported or taken back since" }),
});

const lease = createRoute({
  method: "post",
  path: "/api/work/lease",
  summary: "Lease up to 64 chunks",
  request: { headers: idempotencyHeaders, body: { content: { "application/json": { schema: leaseRequest } }, required: true } },
  responses: { 200: { description: "leases, or none and when to ask again", content: { "application/json": { schema: leaseResponse } } } },
});

const results = createRoute({
  method: "post",
  path: "/api/work/results",
  summary: "Post results and errors; with `next`, lease the following batch in the same round trip",
  request: { headers: idempotencyHeaders, body: { content: { "application/json": { schema: resultsRequest } }, required: true } },
  responses: { 200: { description: "what was accepted", content: { "application/json": { schema: resultsResponse } } } },
});

const heartbeat = createRoute({
  method: "post",
  path: "/api/work/heartbeat",
  summary: "Keep leases alive while their chunks run; learn which were lost or cancelled",
  request: { body: { content: { "application/json": { schema: heartbeatRequest } }, required: true } },
  responses: { 200: { description: "each lease id, by what became of it", content: { "application/json": { schema: heartbeatResponse } } } },
});

/** A stable counter shard per volunteer, so concurrent volunteers update different rows. */
const shardOf = (volunteerId: string) => parseInt(volunteerId.slice(-4), 16) % 16;

// Expired leases are swept by lease requests themselves (no daemon), but not by every one:
// one sweep per process every 250 ms finds what there is, and spares a round trip per request.
const sweepEveryMs = 250;
const lastSweep = new WeakMap<object, number>();

async function sweepExpiredLeases(db: AppContext["var"]["deps"]["db"], shard: number) {
  const now = Date.now();
  if ((lastSweep.get(db) ?? 0) > now - sweepEveryMs) return;
  lastSweep.set(db, now);
  await reclaimExpiredLeases(db, shard);
}

async function leaseFor(c: AppContext, claims: TokenClaims, request: z.output<typeof leaseRequest>, idempotencyKey: string | undefined) {
  const { db, env, leaseIds } = c.var.deps;
  await sweepExpiredLeases(db, shardOf(claims.sub));
  const chunks = await leaseChunks(db, {
    volunteerId: claims.sub,
    userId: claims.uid ?? null,
    max: request.max,
    threads: request.capabilities.threads,
    cpuPercent: request.capabilities.cpuPercent,
    webgpu: request.capabilities.webgpu,
    excludeTasks: request.exclude.tasks,
    excludeCreators: request.exclude.creators,
    graceMs: env.leaseGraceMs,
    idempotencyKey: idempotencyKey ?? null,
  });
  const blocks = new Map<number, Promise<string>>();
  const blockOf = (chunk: LeasedChunk) => {
    let block = blocks.get(chunk.leaseRowId);
    if (!block) {
      block = leaseIds.encodeBlock({ leaseRowId: chunk.leaseRowId, taskId: chunk.taskId, volunteerId: claims.sub, copy: chunk.copy, firstIdx: chunk.firstIdx, n: chunk.n });
      blocks.set(chunk.leaseRowId, block);
    }
    return block;
  };
  const leases = await Promise.all(chunks.map(async (chunk) => leaseJson(leaseIds.chunkId(await blockOf(chunk), chunk.index), chunk)));
  return { leases, retryAfterMs: leases.length > 0 ? 0 : env.idleRetryMs };
}

function leaseJson(leaseId: string, chunk: LeasedChunk) {
  return {
    leaseId,
    taskId: chunk.taskId,
    index: chunk.index,
    input: JSON.parse(chunk.input) as unknown,
    deadline: chunk.deadline.toISOString(),
    codeSha256: chunk.codeSha256,
    wasmSha256: chunk.wasmSha256,
    timeoutMs: chunk.timeoutMs,
    requires: chunk.requires,
    entry: chunk.entry,
  };
}

export const workRoutes = createRouter()
  .openapi(lease, async (c) => {
    const startedAt = performance.now();
    const claims = await authorize(c, volunteerRoles);
    const response = await leaseFor(c, claims, c.req.valid("json"), c.req.valid("header")["idempotency-key"]);
    c.var.deps.work.leaseAnswered(response.leases.length, secondsSince(startedAt));
    return c.json(response, 200);
  })
  .openapi(results, async (c) => {
    const startedAt = performance.now();
    const claims = await authorize(c, volunteerRoles);
    const body = c.req.valid("json");
    const { db, leaseIds } = c.var.deps;
    const okItems: ChunkResult[] = [];
    const errorItems: ChunkError[] = [];
    const leaseIdOf = new Map<string, string>();
    // Every id is checked before anything is written: one forged or foreign id rejects the batch.
    const decode = leaseIds.decoder();
    for (const [position, item] of body.results.entries()) {
      const parts = await decode(item.leaseId);
      if (!parts) throw unprocessable(`results.${position}.leaseId is not a lease id this server issued`, [{ path: `results.${position}.leaseId`, message: "invalid lease id" }]);
      if (parts.volunteerId !== claims.sub) throw forbidden(`results.${position}.leaseId was issued to another volunteer`);
      const ref = { leaseRowId: parts.leaseRowId, taskId: parts.taskId, index: parts.index };
      leaseIdOf.set(`${ref.leaseRowId}:${ref.index}`, item.leaseId);
      const cpuMs = Math.round(item.cpuMs);
      if (item.error) {
        errorItems.push({ ...ref, kind: item.error.kind, message: item.error.message, cpuMs });
        continue;
      }
      // RFC 8785 canonical JSON: copies of a replicated chunk are compared by its hash.
      const json = canonicalize(item.result) ?? "null";
      if (json.length > maxResultBytes / 3 && utf8.encode(json).length > maxResultBytes) {
        throw new ProblemError(413, "Payload too large", `results.${position}.result is larger than 1 MiB`, [
          { path: `results.${position}.result`, message: "at most 1 MiB of JSON" },
        ]);
      }
      okItems.push({ ...ref, result: json, cpuMs });
    }
    const outcome = await submitChunks(db, {
      volunteerId: claims.sub,
      userId: claims.uid ?? null,
      shard: shardOf(claims.sub),
      results: okItems,
      errors: errorItems,
    });
    c.var.deps.taskChanged([...new Set([...okItems, ...errorItems].map((item) => item.taskId))]);
    const rejected = outcome.rejected.map((r) => ({ leaseId: leaseIdOf.get(`${r.ref.leaseRowId}:${r.ref.index}`) ?? "", reason: r.reason }));
    const response: z.input<typeof resultsResponse> = { accepted: body.results.length - rejected.length, rejected };
    if (body.next) Object.assign(response, await leaseFor(c, claims, body.next, c.req.valid("header")["idempotency-key"]));
    c.var.deps.work.resultsAnswered({ accepted: response.accepted, rejected: rejected.length, leased: response.leases?.length ?? 0 }, secondsSince(startedAt));
    return c.json(response, 200);
  })
  .openapi(heartbeat, async (c) => {
    const claims = await authorize(c, volunteerRoles);
    const { leaseIds } = c.req.valid("json");
    const { db, env, leaseIds: codec } = c.var.deps;
    const decode = codec.decoder();
    const rowOf = new Map<string, number>();
    for (const [position, leaseId] of leaseIds.entries()) {
      const parts = await decode(leaseId);
      if (!parts) throw unprocessable(`leaseIds.${position} is not a lease id this server issued`, [{ path: `leaseIds.${position}`, message: "invalid lease id" }]);
      if (parts.volunteerId !== claims.sub) throw forbidden(`leaseIds.${position} was issued to another volunteer`);
      rowOf.set(leaseId, parts.leaseRowId);
    }
    const outcome = await heartbeatLeases(db, { volunteerId: claims.sub, leaseRowIds: [...new Set(rowOf.values())], graceMs: env.leaseGraceMs });
    const stateOf = new Map<number, "extended" | "lost" | "cancelled">();
    for (const state of ["extended", "lost", "cancelled"] as const) for (const row of outcome[state]) stateOf.set(row, state);
    const response = { extended: [] as string[], lost: [] as string[], cancelled: [] as string[] };
    for (const [leaseId, row] of rowOf) response[stateOf.get(row) ?? "lost"].push(leaseId);
    return c.json(response, 200);
  });
