// Helpers for volunteers written against the API directly (a script, a test, a bench): a
// leased block is a run of consecutive chunks under one lease id, and results go back per
// block. These turn a block into its chunks and per-chunk outcomes back into block reports.
import type { BlockReport, ChunkErrorKind, ConsoleLine, LeasedBlock, LeaseRequest } from "@crowdcompute/contract";
import type { ResultReport } from "./types.ts";

/** One chunk of a leased block. */
export interface BlockChunk {
  leaseId: string;
  taskId: string;
  /** The chunk's place in its block: what a report names it by. */
  offset: number;
  /** The chunk's index in its task. */
  index: number;
  input: unknown;
  entry: LeasedBlock["entry"];
}

/** The chunks of a block still to compute (offsets a repeated lease request says are reported are left out). */
export function blockChunks(block: LeasedBlock): BlockChunk[] {
  const reported = new Set(block.reportedOffsets ?? []);
  const chunks: BlockChunk[] = [];
  for (const [offset, input] of block.inputs.entries()) {
    if (!reported.has(offset)) chunks.push({ leaseId: block.leaseId, taskId: block.taskId, offset, index: block.firstIndex + offset, input, entry: block.entry });
  }
  return chunks;
}

/** The chunks of every block of a lease answer, in order. */
export const chunksOfLeases = (blocks: LeasedBlock[]): BlockChunk[] => blocks.flatMap(blockChunks);

/** What became of one chunk, and what it wrote to its console (only a chunk that wrote any needs `console`). */
export type ChunkOutcomeReport = { chunk: Pick<BlockChunk, "leaseId" | "offset">; cpuMs?: number; console?: { lines: ConsoleLine[]; truncated?: boolean } } & (
  | { result: unknown }
  | { error: { kind: ChunkErrorKind; message: string } }
);

/**
 * Per-chunk outcomes as block reports: consecutive results of one block become one report
 * (which the server stores as one row when the block still holds them), errors travel with
 * their block's first report.
 */
export function blockReports(outcomes: ChunkOutcomeReport[]): BlockReport[] {
  const reports: BlockReport[] = [];
  const firstOf = new Map<string, BlockReport>();
  let last: (BlockReport & { results: unknown[] }) | null = null;
  // A chunk's console rides in the report that carries its result or error.
  const logged: { outcome: ChunkOutcomeReport; report: () => BlockReport }[] = [];
  for (const outcome of outcomes) {
    const { leaseId, offset } = outcome.chunk;
    const cpuMs = outcome.cpuMs ?? 0;
    if (outcome.console)
      logged.push({
        outcome,
        report: () => reports.find((r) => r.leaseId === leaseId && (r.errors?.some((e) => e.offset === offset) || (offset >= (r.offset ?? 0) && offset < (r.offset ?? 0) + (r.results?.length ?? 0))))!,
      });
    if ("error" in outcome) {
      let report = firstOf.get(leaseId);
      if (!report) {
        report = { leaseId, offset: 0, results: [], cpuMs: 0 };
        reports.push(report);
        firstOf.set(leaseId, report);
      }
      (report.errors ??= []).push({ offset, ...outcome.error });
      report.cpuMs = (report.cpuMs ?? 0) + cpuMs;
      continue;
    }
    if (last && last.leaseId === leaseId && (last.offset ?? 0) + last.results.length === offset) {
      last.results.push(outcome.result);
      last.cpuMs = (last.cpuMs ?? 0) + cpuMs;
      continue;
    }
    const report = firstOf.get(leaseId);
    // A block's errors-only report takes the first run of results it meets.
    if (report && report.results?.length === 0 && !(report.errors ?? []).some((e) => e.offset === offset)) {
      report.offset = offset;
      report.results = [outcome.result];
      report.cpuMs = (report.cpuMs ?? 0) + cpuMs;
      last = report as BlockReport & { results: unknown[] };
      continue;
    }
    last = { leaseId, offset, results: [outcome.result], cpuMs };
    reports.push(last);
    if (!firstOf.has(leaseId)) firstOf.set(leaseId, last);
  }
  for (const { outcome, report } of logged) {
    const { lines, truncated } = outcome.console!;
    (report().console ??= []).push({ offset: outcome.chunk.offset, lines, ...(truncated ? { truncated } : {}) });
  }
  return reports;
}

/**
 * The text of a results request (`POST /api/work/results`): reports whose results are JSON text
 * (`resultTexts`) have it spliced in as it is, not parsed and serialized again; the rest is
 * JSON.stringify's. Its shape is `resultsRequestSchema`'s either way.
 */
export function resultsRequestJson(reports: ResultReport[], next?: LeaseRequest): string {
  const parts = reports.map((report) => {
    if (!("resultTexts" in report)) return JSON.stringify(report);
    const { resultTexts, ...rest } = report;
    // `rest` holds at least the lease id, so its text is `{…}`: the results go before its brace.
    return `${JSON.stringify(rest).slice(0, -1)},"results":[${resultTexts.join(",")}]}`;
  });
  return `{"results":[${parts.join(",")}]${next ? `,"next":${JSON.stringify(next)}` : ""}}`;
}
