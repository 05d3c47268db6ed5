// The volunteer side of the API, what it reads from requests before anything is written:
// block reports into runs of results, errors and console output; lease ids verified as the
// caller's; a heartbeat's progress and checkpoints (docs/architecture.md, "Dispatch" and
// "Progress, console and checkpoints").
import { type heartbeatRequestSchema, MAX_CHECKPOINT_CHARS, MAX_RESULT_BYTES, type resultsRequestSchema } from "@crowdcompute/contract";
import type { ChunkError, ConsoleReport, LiveChunkReport, ResultRun } from "@crowdcompute/db";
import type { z } from "@hono/zod-openapi";
import { canonicalJson } from "../../lib/canonical-json.ts";
import type { AppContext } from "../../lib/context.ts";
import { jsonLimitProblem, jsonViolation, maxJsonDepth } from "../../lib/json-limits.ts";
import type { SignedBlock } from "../../lib/lease-ids.ts";
import { forbidden, ProblemError, unprocessable } from "../../lib/problem.ts";
import type { TokenClaims } from "../../lib/tokens.ts";

// A string of n UTF-16 units is at most 3n bytes of UTF-8: only long results need encoding.
const utf8 = new TextEncoder();
const exceedsResultBytes = (json: string) => json.length > MAX_RESULT_BYTES / 3 && utf8.encode(json).length > MAX_RESULT_BYTES;

type Report = z.output<typeof resultsRequestSchema>["results"][number];

/**
 * Turns verified block reports into runs of results and chunk errors. Every id is checked,
 * and every offset, before anything is written: one forged or foreign id, an offset outside
 * its block or an offset given twice in one request rejects the whole request.
 */
export async function readReports(c: AppContext, claims: TokenClaims, reports: Report[]) {
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
        // A replicated block reported whole in one report: tried first as a vote by the block.
        // Not a spot-checked task's first copy, which a trusted volunteer's block statement
        // mostly accepts alone (the vote would be a second statement for nine blocks in ten).
        wholeReplicatedBlock: block.replicated && (!block.spotChecked || block.copy > 0) && block.n >= 2 && report.offset === 0 && report.results.length === block.n,
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
function consoleOf(report: Report, block: SignedBlock, position: number): ConsoleReport[] {
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
function takeOffsets(taken: Map<number, Uint8Array>, block: SignedBlock, offsets: number[], position: number): void {
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
 * is canonical (keys sorted: `canonicalJson`, which takes JSON.stringify when they already are); any other task's is JSON.stringify's (the work function's key
 * order), which costs a fifth of the canonicalize library and a fraction of its garbage
 * (3.2 vs 0.65 ms for 4096 small objects), the API's largest cost per chunk. 413 for any
 * result over 1 MiB.
 */
function resultsJson(report: Report, block: SignedBlock, position: number): string {
  const serialize = block.replicated ? canonicalJson : (value: unknown) => JSON.stringify(value) ?? "null";
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

/** Every lease id of a request, verified and the caller's: 422 for one this server did not issue, 403 for another volunteer's. */
export async function leaseBlocksOf(c: AppContext, claims: TokenClaims, leaseIds: string[], field: string): Promise<Map<string, SignedBlock>> {
  const decode = c.var.deps.leaseIds.decoder();
  const blocks = new Map<string, SignedBlock>();
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
export function liveReports(body: Heartbeat, blocks: Map<string, SignedBlock>): LiveChunkReport[] {
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
export function rejectedRuns(rejected: { leaseRowId: number; index: number; count: number; reason: string }[], blockOf: Map<number, { leaseId: string; firstIdx: number }>) {
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
