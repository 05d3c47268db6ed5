// The volunteer side of the HTTP API: leases and results travel as blocks of consecutive
// chunks, one signed lease id per block (docs/architecture.md, "Dispatch"). The API
// validates with these schemas, the OpenAPI document is generated from them, and the SDK,
// the web page and the CLI take their types from them.
import { z } from "zod";
import {
  DEFAULT_BUFFER_MS,
  MAX_BLOCK_CHUNKS,
  MAX_BUFFER_MS,
  MAX_CONSOLE_CHARS,
  MAX_CONSOLE_LINES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_HEARTBEAT_CHECKPOINTS,
  MAX_HEARTBEAT_LEASES,
  MAX_HEARTBEAT_PROGRESS,
  MAX_LEASE_CHUNKS,
  MAX_LEASE_WAIT_MS,
  MAX_PROGRESS_MESSAGE_CHARS,
  MAX_REPORTS_PER_REQUEST,
} from "./limits.ts";
import { chunkErrorKinds, consoleLevels } from "./statuses.ts";

const uuid = z.uuid();
const leaseId = z.string().min(1).max(200);
const offset = z
  .number()
  .int()
  .min(0)
  .max(MAX_BLOCK_CHUNKS - 1);

export const capabilitiesSchema = z
  .object({
    webgpu: z.boolean().default(false),
    threads: z.number().int().min(1).max(256).default(1),
    cpuPercent: z.number().int().min(1).max(100).default(100),
  })
  .strict();

export const leaseRequestSchema = z
  .object({
    max: z.number().int().min(1).max(MAX_LEASE_CHUNKS).default(MAX_LEASE_CHUNKS).meta({ description: "The most chunks to be given, over all blocks" }),
    bufferMs: z.number().int().min(0).max(MAX_BUFFER_MS).default(DEFAULT_BUFFER_MS).meta({
      description:
        "How long to be kept busy (ms): each task's share is bufferMs × threads × cpuPercent/100 ÷ its measured mean chunk time, capped by `max`; a task not yet measured gives 2 chunks a thread",
    }),
    capabilities: capabilitiesSchema.default({ webgpu: false, threads: 1, cpuPercent: 100 }),
    waitMs: z.number().int().min(0).max(MAX_LEASE_WAIT_MS).optional().meta({
      description:
        "With no work at once, how long (ms) the server may hold the request and answer the moment a task this volunteer may run gets work. One waiting request per volunteer (a newer one answers the older at once, empty). Ignored in `next` of a results request, and on the Workers entry, which answers at once; an answer with no work still says retryAfterMs",
    }),
    exclude: z
      .object({ tasks: z.array(uuid).max(1000).default([]), creators: z.array(uuid).max(1000).default([]) })
      .strict()
      .default({ tasks: [], creators: [] }),
  })
  .strict();

export const leasedBlockSchema = z.object({
  leaseId: z.string().meta({ description: "Signed id of the block: report its chunks and heartbeat it under this id" }),
  taskId: z.string(),
  firstIndex: z.number().int().meta({ description: "The task index of the block's first chunk; chunk k of the block is index firstIndex + k" }),
  inputs: z.array(z.unknown()).meta({ description: "One input per chunk, in index order" }),
  reportedOffsets: z.array(z.number().int()).optional().meta({ description: "Offsets already reported (only when a repeated Idempotency-Key returns a block in part done): skip them" }),
  deadline: z.string().meta({ description: "When the block's unreported chunks go back to others unless a heartbeat extends it" }),
  codeSha256: z.string(),
  wasmSha256: z.string().nullable(),
  timeoutMs: z.number().int().meta({ description: "Each chunk's own limit, counted from its start" }),
  memoryMb: z.number().int().meta({ description: "Each worker's memory budget in MiB (a chunk over it fails as oom), capped by the volunteer's own limit" }),
  requires: z.object({ webgpu: z.boolean().optional() }),
  entry: z.enum(["work", "reduce"]).meta({ description: "`reduce`: each input is an array of results, for the code's `reduce` export" }),
  checkpoints: z
    .array(z.object({ offset: z.number().int(), state: z.unknown() }))
    .optional()
    .meta({
      description:
        "Chunks of the block that an earlier attempt checkpointed (`ctx.checkpoint`) before it vanished, timed out or was given back: hand each its `state` as `ctx.resume`. Only retries (one-chunk blocks) of tasks with one copy per chunk carry one",
    }),
});

export const leaseResponseSchema = z.object({
  leases: z.array(leasedBlockSchema),
  retryAfterMs: z.number().int().meta({ description: "When there is no work: how long to wait before asking again" }),
});

export const chunkErrorSchema = z
  .object({
    offset,
    kind: z.enum(chunkErrorKinds),
    message: z.string().max(MAX_ERROR_MESSAGE_BYTES),
  })
  .strict();

export const consoleLineSchema = z.object({ level: z.enum(consoleLevels), text: z.string().max(MAX_CONSOLE_CHARS) }).strict();

/** One chunk's console, as the sandbox kept it: at most 100 lines and 16 KiB of text. */
export const chunkConsoleSchema = z
  .object({
    offset,
    lines: z.array(consoleLineSchema).max(MAX_CONSOLE_LINES),
    truncated: z.boolean().optional().meta({ description: "The chunk wrote more than was kept" }),
  })
  .strict()
  .refine((logged) => logged.lines.reduce((chars, line) => chars + line.text.length, 0) <= MAX_CONSOLE_CHARS, {
    message: `a chunk's console holds at most ${MAX_CONSOLE_CHARS} characters of text`,
  });

export const blockReportSchema = z
  .object({
    leaseId,
    offset: offset.default(0).meta({ description: "The block offset of `results[0]`: a block may be reported in parts" }),
    results: z.array(z.unknown()).max(MAX_BLOCK_CHUNKS).default([]).meta({ description: "Results of the chunks at offset, offset + 1, …: any JSON values, at most 1 MiB each" }),
    errors: z.array(chunkErrorSchema).max(MAX_BLOCK_CHUNKS).default([]).meta({ description: "Chunks that failed, by block offset (outside the span of `results`)" }),
    cpuMs: z.number().min(0).max(1e12).default(0).meta({ description: "CPU time these chunks took, all together" }),
    console: z
      .array(chunkConsoleSchema)
      .max(MAX_BLOCK_CHUNKS)
      .optional()
      .meta({ description: "What chunks of this report (by block offset, each a result or error here) wrote to their console; only chunks that wrote any" }),
  })
  .strict()
  .refine((report) => report.results.length + report.errors.length > 0, { message: "report at least one result or error" })
  .refine((report) => report.offset + report.results.length <= MAX_BLOCK_CHUNKS, { message: `a block has at most ${MAX_BLOCK_CHUNKS} chunks` });

export const resultsRequestSchema = z
  .object({
    results: z.array(blockReportSchema).min(1).max(MAX_REPORTS_PER_REQUEST),
    next: leaseRequestSchema.optional().meta({ description: "Lease the following blocks in the same round trip" }),
  })
  .strict();

export const rejectionReasons = ["task-cancelled", "task-unknown", "chunk-failed", "chunk-reissued"] as const;
export type RejectionReason = (typeof rejectionReasons)[number];

export const resultsResponseSchema = z.object({
  accepted: z.number().int().meta({ description: "Chunks accepted (a chunk reported again is accepted and changes nothing)" }),
  rejected: z.array(
    z.object({
      leaseId: z.string(),
      offset: z.number().int(),
      count: z.number().int().meta({ description: "Consecutive chunks from offset with this reason" }),
      reason: z.enum(rejectionReasons).meta({
        description:
          "task-cancelled (or not started), task-unknown, chunk-failed (already failed for good), or chunk-reissued (a reduce chunk whose inputs changed after this copy was leased); drop the chunks and go on",
      }),
    }),
  ),
  leases: z.array(leasedBlockSchema).optional(),
  retryAfterMs: z.number().int().optional(),
});

/** The latest `ctx.progress` of a chunk, by its block offset. */
export const chunkProgressSchema = z
  .object({
    offset,
    fraction: z.number().min(0).max(1),
    message: z.string().max(MAX_PROGRESS_MESSAGE_CHARS).optional(),
  })
  .strict();

/** The latest `ctx.checkpoint(state)` of a chunk, by its block offset. */
export const chunkCheckpointSchema = z.object({ offset, state: z.unknown().meta({ description: "Any JSON value, at most 256 KiB of JSON text and 64 levels deep" }) }).strict();

const entriesIn = (record: Record<string, unknown[]> | undefined) => Object.values(record ?? {}).reduce((n, list) => n + list.length, 0);

export const heartbeatRequestSchema = z
  .object({
    leaseIds: z.array(leaseId).min(1).max(MAX_HEARTBEAT_LEASES),
    progress: z
      .record(leaseId, z.array(chunkProgressSchema).max(MAX_BLOCK_CHUNKS))
      .optional()
      .meta({ description: `By lease id (each one of \`leaseIds\`): the chunks whose progress changed since the last beat; at most ${MAX_HEARTBEAT_PROGRESS} entries in all` }),
    checkpoints: z
      .record(leaseId, z.array(chunkCheckpointSchema).max(MAX_HEARTBEAT_CHECKPOINTS))
      .optional()
      .meta({ description: `By lease id (each one of \`leaseIds\`): the chunks that checkpointed since the last beat, their latest state; at most ${MAX_HEARTBEAT_CHECKPOINTS} in all` }),
  })
  .strict()
  .refine((beat) => entriesIn(beat.progress) <= MAX_HEARTBEAT_PROGRESS, { message: `at most ${MAX_HEARTBEAT_PROGRESS} progress entries a heartbeat`, path: ["progress"] })
  .refine((beat) => entriesIn(beat.checkpoints) <= MAX_HEARTBEAT_CHECKPOINTS, { message: `at most ${MAX_HEARTBEAT_CHECKPOINTS} checkpoints a heartbeat`, path: ["checkpoints"] });

export const heartbeatResponseSchema = z.object({
  extended: z.array(z.string()),
  lost: z.array(z.string()),
  cancelled: z.array(z.string()),
});

export const releaseRequestSchema = z
  .object({
    leaseIds: z.array(leaseId).max(MAX_HEARTBEAT_LEASES).default([]),
    leaseRequestKey: z
      .string()
      .regex(/^[\x21-\x7e]{1,200}$/, "1 to 200 printable ASCII characters")
      .optional()
      .meta({ description: "The Idempotency-Key of a lease request whose answer will not be read (a page closing): its blocks go back too, and if it has not arrived yet it gets none" }),
  })
  .strict()
  .refine((release) => release.leaseIds.length > 0 || release.leaseRequestKey !== undefined, { message: "name leaseIds, a leaseRequestKey, or both", path: ["leaseIds"] });

export const releaseResponseSchema = z.object({
  released: z.array(z.string()).meta({ description: "Blocks taken back now: their unreported chunks go to other volunteers" }),
  unknown: z.array(z.string()).meta({ description: "Blocks already taken back (expired, or released before)" }),
  requestReleased: z.number().int().optional().meta({ description: "With leaseRequestKey: how many blocks that request got were taken back" }),
});

export type LeaseRequest = z.input<typeof leaseRequestSchema>;
export type LeasedBlock = z.output<typeof leasedBlockSchema>;
export type LeaseResponse = z.output<typeof leaseResponseSchema>;
export type BlockReport = z.input<typeof blockReportSchema>;
export type ChunkErrorReport = z.output<typeof chunkErrorSchema>;
export type ResultsRequest = z.input<typeof resultsRequestSchema>;
export type ResultsResponse = z.output<typeof resultsResponseSchema>;
export type HeartbeatRequest = z.input<typeof heartbeatRequestSchema>;
export type HeartbeatResponse = z.output<typeof heartbeatResponseSchema>;
export type ChunkConsoleReport = z.output<typeof chunkConsoleSchema>;
export type ConsoleLine = z.output<typeof consoleLineSchema>;
export type ReleaseResponse = z.output<typeof releaseResponseSchema>;
