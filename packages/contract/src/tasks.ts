// The creator side of the HTTP API: a task as it is created, cloned and shown, its chunks and
// their history. The API validates and documents its routes with these schemas, the SDK's
// types are inferred from them, and the web app and the CLI take those types (type-only: the
// page's bundle never loads zod). Adding a task field is a change here and in the db's query
// (packages/db/src/tasks.ts), nothing else. docs/architecture.md, "Rooms".
import { z } from "zod";
import { jsonViolation } from "./json-limits.ts";
import {
  MAX_ALLOW_USERS,
  MAX_ARRAY_INPUTS,
  MAX_CODE_BYTES,
  MAX_JSON_DEPTH,
  MAX_JSON_VALUE_CHARS,
  MAX_RANGE_CHUNK_SIZE,
  MAX_TASK_CHUNKS,
  MAX_TASK_DESCRIPTION_CHARS,
  MAX_TASK_NAME_CHARS,
  MAX_WASM_BYTES,
  TASK_MAX_ATTEMPTS,
  TASK_MEMORY_MB,
  TASK_PRIORITY,
  TASK_REPLICATION,
  TASK_SPOT_CHECK,
  TASK_TIMEOUT_MS,
} from "./limits.ts";
import { rangeChunkCount } from "./range.ts";
import { chunkStatuses, taskStatuses } from "./statuses.ts";
import { consoleLineSchema } from "./work.ts";

/**
 * Text that Postgres can store: `text` and `jsonb` refuse the NUL character, so it is refused
 * at validation, where the problem can name the field.
 */
export const storableText = () => z.string().refine((value) => !value.includes("\u0000"), "must not contain NUL characters");

/** The bytes of base64 text (already checked to be base64). */
export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const bounded = (bounds: { min: number; max: number }) => z.number().int().min(bounds.min).max(bounds.max);
const safeInteger = () => z.number().int().refine(Number.isSafeInteger, "must be a safe integer");

/** A range of integers cut into chunks, instead of stored inputs (contract/src/range.ts derives each chunk). */
export const rangeSchema = z
  .object({
    start: safeInteger(),
    end: safeInteger().meta({ description: "Exclusive" }),
    step: z.number().int().positive().default(1),
    size: z.number().int().positive().max(MAX_RANGE_CHUNK_SIZE).meta({ description: "Integers per chunk" }),
  })
  .strict()
  .refine((r) => r.end > r.start, { message: "end must be greater than start", path: ["end"] })
  .refine((r) => rangeChunkCount(r) <= MAX_TASK_CHUNKS, { message: "too many chunks", path: ["size"] });

const codeSchema = storableText()
  .min(1)
  .refine((code) => new TextEncoder().encode(code).length <= MAX_CODE_BYTES, "code must be at most 1 MiB")
  .meta({ description: "The work function: an ES module whose default export runs once per chunk (≤ 1 MiB); parsed by the server, never run there" });

// Structure checked here, never compiled: the server does not run it.
const wasmSchema = z
  .base64("wasm must be base64")
  .max(Math.ceil(MAX_WASM_BYTES / 3) * 4, "wasm must be at most 16 MiB")
  .superRefine((text, ctx) => {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(text);
    } catch {
      return; // not base64: reported by the check above
    }
    if (bytes.length > MAX_WASM_BYTES) ctx.addIssue({ code: "custom", message: "wasm must be at most 16 MiB" });
    else if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) ctx.addIssue({ code: "custom", message: "wasm is not a valid WebAssembly module" });
  })
  .meta({ description: "A WebAssembly module, base64 (≤ 16 MiB); work code gets it as `ctx.wasm`" });

const requiresSchema = z.object({ webgpu: z.boolean().optional() }).strict();

const toleranceBound = () => z.number().min(0).refine(Number.isFinite, "must be a finite number");
/**
 * Replicated tasks: copies agree when their JSON has the same shape, strings, booleans and
 * nulls as the first trusted copy, and every number is within `abs` of it or within `rel` of
 * the larger magnitude (docs/architecture.md, "Replication, trust and reduce"). Null: exact.
 */
export const toleranceSchema = z
  .object({
    abs: toleranceBound().optional().meta({ description: "Numbers agree when |a − b| ≤ abs" }),
    rel: toleranceBound().optional().meta({ description: "Numbers agree when |a − b| ≤ rel × max(|a|, |b|)" }),
  })
  .strict()
  .refine((t) => t.abs !== undefined || t.rel !== undefined, "give abs, rel or both (null: results must agree exactly)")
  .meta({ id: "Tolerance" });

/**
 * The options a task is run with, without defaults: a clone takes each of them optionally and
 * copies what is left out, a new task gets the defaults (`newTaskSchema`).
 */
export const taskOptionsSchema = z.object({
  name: storableText().trim().min(1).max(MAX_TASK_NAME_CHARS),
  description: storableText().max(MAX_TASK_DESCRIPTION_CHARS).meta({ description: "Shown to volunteers" }),
  priority: bounded(TASK_PRIORITY).meta({ description: "Orders the creator's own tasks (creators are served round-robin)" }),
  replication: bounded(TASK_REPLICATION).meta({
    description: 'Copies of each chunk run by distinct volunteers; `quorum` of them must agree (docs/architecture.md, "Replication, trust and reduce")',
  }),
  quorum: bounded(TASK_REPLICATION),
  timeoutMs: bounded(TASK_TIMEOUT_MS).meta({ description: "Each chunk's limit, from its start" }),
  memoryMb: bounded(TASK_MEMORY_MB).meta({ description: "Each worker's memory budget in MiB: a chunk over it fails as `oom`" }),
  maxAttempts: bounded(TASK_MAX_ATTEMPTS).meta({ description: "Errors and timeouts a chunk may have before it fails" }),
  requires: requiresSchema,
  tolerance: toleranceSchema.nullable().meta({
    description: "Replicated tasks: how far numbers in agreeing copies may differ (absolute or relative); null: results must agree exactly",
  }),
  spotCheck: z.number().gt(TASK_SPOT_CHECK.min, "spotCheck must be more than 0").max(TASK_SPOT_CHECK.max).meta({
    description:
      'Replicated tasks: the share of blocks whose first copy comes from a trusted volunteer that are copied anyway, chosen after the copy is reported; the rest are accepted on that copy. Probationers\' blocks are always copied. 1 (the default): every block (docs/architecture.md, "Replication, trust and reduce")',
  }),
  allowUsers: z.array(z.uuid()).max(MAX_ALLOW_USERS).nullable().meta({ description: "Only these users' volunteers run it; null: everyone's" }),
});

const options = taskOptionsSchema.shape;
const quorumWithinReplication = { message: "quorum must be at most replication", path: ["quorum"] };

export const newTaskSchema = z
  .object({
    name: options.name,
    description: options.description.default(""),
    code: codeSchema,
    wasm: wasmSchema.optional(),
    // Each input is stored and served on its own: bounded as an NDJSON line is.
    inputs: z
      .array(z.unknown())
      .min(1, "at least one input")
      .max(MAX_ARRAY_INPUTS)
      .superRefine((items, ctx) => {
        for (let i = 0; i < items.length; i++) {
          const violation = jsonViolation(items[i], { maxDepth: MAX_JSON_DEPTH, maxChars: MAX_JSON_VALUE_CHARS });
          if (!violation) continue;
          ctx.addIssue({ code: "custom", path: [i], message: violation.path ? `${violation.message}, at ${violation.path}` : violation.message });
          return; // one is enough: a million bad inputs would make a million issues
        }
      })
      .optional()
      .meta({ description: "One chunk per element. Leave out both `inputs` and `range` to upload NDJSON later (POST /api/tasks/{id}/inputs)" }),
    range: rangeSchema.optional(),
    priority: options.priority.default(TASK_PRIORITY.default),
    replication: options.replication.default(TASK_REPLICATION.default),
    quorum: options.quorum.default(TASK_REPLICATION.default),
    timeoutMs: options.timeoutMs.default(TASK_TIMEOUT_MS.default),
    memoryMb: options.memoryMb.default(TASK_MEMORY_MB.default),
    maxAttempts: options.maxAttempts.default(TASK_MAX_ATTEMPTS.default),
    requires: options.requires.default({}),
    tolerance: options.tolerance.default(null),
    spotCheck: options.spotCheck.default(TASK_SPOT_CHECK.default),
    allowUsers: options.allowUsers.default(null),
    start: z.boolean().default(false).meta({ description: "Publish it at once (else a draft)" }),
  })
  .strict()
  // Neither: the inputs come later as NDJSON (POST /api/tasks/:id/inputs).
  .refine((t) => t.inputs === undefined || t.range === undefined, { message: "give at most one of `inputs` (a JSON array) or `range`", path: ["inputs"] })
  .refine((t) => t.quorum <= t.replication, quorumWithinReplication)
  .meta({ id: "NewTask" });

/**
 * What a clone may change: code, name and options, each copied from the source when left out.
 * Not the inputs: they are the point of a clone.
 */
export const cloneTaskSchema = z
  .object({
    code: codeSchema.optional(),
    wasm: wasmSchema.optional(),
    ...taskOptionsSchema.partial().shape,
  })
  .strict()
  .meta({ id: "CloneChanges" });

const count = () => z.number().int();

/** A task as the API shows it: never its code, nor its owner's id. */
export const taskSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    description: z.string(),
    status: z.enum(taskStatuses),
    priority: z.number(),
    replication: z.number(),
    quorum: z.number(),
    timeoutMs: z.number(),
    memoryMb: z.number().meta({ description: "Each worker's memory budget (MiB): a chunk over it fails as `oom`" }),
    maxAttempts: z.number(),
    requires: z.object({ webgpu: z.boolean().optional() }),
    tolerance: z.object({ abs: z.number().optional(), rel: z.number().optional() }).nullable().meta({ description: "how far numbers in agreeing copies may differ; null: exact agreement" }),
    spotCheck: z.number().meta({ description: "the share of trusted volunteers' blocks copied to check them (1: every block)" }),
    allowUsers: z.array(z.string()).nullable(),
    codeSha256: z.string(),
    wasmSha256: z.string().nullable(),
    sealed: z.boolean().meta({ description: "No more inputs will come (always, but for an NDJSON task until its part with seal=true)" }),
    counts: z.object({
      total: count(),
      pending: count().meta({ description: "waiting for a volunteer to lease them" }),
      leased: count().meta({ description: "out on volunteers' leases; a volunteer computes its block a part at a time, so not all of them are being computed this instant" }),
      done: count(),
      failed: count(),
      awaitingCopy: count().meta({
        description: "replicated tasks: of the pending chunks, those with a vote in that wait for a copy from another volunteer (no volunteer votes twice on a chunk)",
      }),
    }),
    waiting: z
      .object({
        trustedCopy: count().meta({ description: "chunks whose untrusted copies already agree (a quorum of them): only a trusted volunteer's copy can decide them" }),
        moreCopies: count().meta({ description: "chunks that need more agreeing copies, from volunteers (and users) that have not voted on them" }),
        examined: count().meta({ description: "the chunks these figures cover: the first awaiting chunks by index, at most 500; awaitingCopy may be more" }),
      })
      .nullable()
      .meta({
        description:
          'GET /api/tasks/{id} of a running or paused replicated task with chunks awaiting a copy: what they wait for (docs/architecture.md, "Replication, trust and reduce"); each chunk\'s own reason is `waitingFor` in its chunk listing. Null otherwise, and in task lists',
      }),
    volunteers: count().meta({ description: "volunteers holding a lease on the task now" }),
    computedBy: count()
      .nullable()
      .meta({ description: "once the task is done, failed or cancelled: the volunteers that reported a result or an error for its chunks, copies included; null while it can still run" }),
    cpuMs: z.number(),
    verification: z
      .object({
        copiesReceived: count().meta({ description: "copies of chunks that came back as votes, the first copy of each included (copiesReceived ÷ done: the overhead)" }),
        chunksReplicated: count().meta({ description: "chunks that went to a vote for more than one copy" }),
        disagreements: count().meta({ description: "chunks decided, or failed as no-quorum, with copies that disagreed" }),
        volunteersBanned: count().meta({ description: "volunteers banned for results that lost on this task" }),
      })
      .meta({ description: 'What verifying a replicated task cost (docs/architecture.md, "Replication, trust and reduce"); all 0 for a task of one copy a chunk' }),
    chunksPerSec: z.number().meta({ description: "results over the last 60 s (or the task's life, when shorter), per second" }),
    lastError: z.object({ index: z.number().int(), kind: z.string(), message: z.string() }).nullable(),
    aggregate: z
      .object({ state: z.string(), value: z.unknown().optional() })
      .meta({ description: "the code's `reduce` over every result: state `none`, `pending`, `done` (with its value) or `failed`" }),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: "Task" });

/** One copy of a replicated chunk that came back. */
export const chunkVoteSchema = z
  .object({
    volunteer: z.object({ id: z.string(), name: z.string().nullable().meta({ description: "the name the volunteer chose; never an email" }) }),
    hashPrefix: z
      .string()
      .meta({ description: "the first 12 hex digits of the server's sha256 of the result's canonical JSON (with a tolerance, of the copy that leads its side): equal prefixes, agreeing results" }),
    agrees: z.boolean().nullable().meta({ description: "whether this copy matches the accepted result; null while the chunk has none" }),
    at: z.string().meta({ description: "when the copy came back" }),
  })
  .meta({ id: "ChunkVote" });

/** What a chunk wrote to its console (`console.log` …): the lines the sandbox kept (work.ts, `chunkConsoleSchema`). */
export const chunkConsoleViewSchema = z
  .object({
    outcome: z.enum(["done", "error"]).meta({ description: "`done`: the lines of the attempt whose result was kept; `error`: of the latest attempt that failed" }),
    lines: z.array(consoleLineSchema),
    truncated: z.boolean().meta({ description: "the chunk wrote more than the 100 lines or 16 KiB kept" }),
    at: z.string(),
  })
  .meta({ id: "ChunkConsole" });

/** One item of `GET /api/tasks/{id}/chunks`. */
export const chunkSchema = z
  .object({
    index: z.number().int(),
    input: z.unknown().meta({ description: "the chunk's input (derived for range tasks)" }),
    status: z.enum(chunkStatuses),
    attempts: z.number().int().nullable().meta({ description: "errors and timeouts counted toward maxAttempts; null once done (a completed chunk keeps no record of them)" }),
    expiries: z.number().int().nullable().meta({ description: "leases that expired on it (volunteers that vanished), capped apart from attempts; null once done" }),
    votes: z.array(chunkVoteSchema).meta({ description: "copies that came back, oldest first (replicated tasks only)" }),
    waitingFor: z
      .object({
        reason: z.enum(["trustedCopy", "moreCopies", "firstCopy"]).meta({
          description:
            "`trustedCopy`: `agreeing` untrusted copies agree (a quorum) and only a trusted volunteer's copy can decide it; `moreCopies`: `moreAgreeing` more copies that agree with its largest side (`agreeing`) would decide it, one of them trusted if none there is; `firstCopy`: no copy has come back yet",
        }),
        agreeing: count().meta({ description: "copies on the chunk's largest agreeing side" }),
        moreAgreeing: count().meta({ description: "agreeing copies still needed to decide it" }),
        copiesOut: count().meta({ description: "copies being computed now; each further copy needs a volunteer (and user) that has not voted on it" }),
      })
      .nullable()
      .meta({ description: 'a chunk under vote: what it waits for (docs/architecture.md, "Replication, trust and reduce"); null otherwise' }),
    copiesNeeded: z.number().int().nullable().meta({
      description:
        "a chunk under vote: the copies it needs so far (the replication, plus one per disagreement, and one at a time while agreeing untrusted votes wait for a trusted one); each further copy needs a volunteer (and user) that has not voted on it. Null otherwise",
    }),
    lastError: z.object({ kind: z.string(), message: z.string() }).nullable(),
    progress: z
      .object({ fraction: z.number(), message: z.string().nullable(), at: z.string() })
      .nullable()
      .meta({ description: "a leased chunk whose volunteer reported `ctx.progress`: the latest (volunteers send it with their heartbeats, every few seconds); null otherwise" }),
    checkpointAt: z.string().nullable().meta({ description: "when an attempt last saved a checkpoint (`ctx.checkpoint`): a retry of the chunk resumes from it; null when there is none" }),
    console: chunkConsoleViewSchema.nullable().meta({ description: "what the chunk wrote to its console (`console.log` …), when it wrote any" }),
  })
  .meta({ id: "Chunk" });

/** `GET /api/tasks/{id}/throughput`: chunks done per bucket over the task's life (empty buckets left out). */
export const throughputSchema = z
  .object({
    bucketSec: z.number().int().meta({ description: "the width of each bucket, in seconds" }),
    points: z.array(z.object({ t: z.number().meta({ description: "the bucket's start, in seconds since the epoch" }), done: z.number().int() })),
    first: z.number().nullable().meta({ description: "the first result, in seconds since the epoch; null before any" }),
    last: z.number().nullable().meta({ description: "the latest result" }),
  })
  .meta({ id: "Throughput" });

/** What a volunteer may know of a task it computes for. */
export const taskSummarySchema = z.object({ id: z.string(), name: z.string(), description: z.string(), creator: z.string().nullable(), creatorId: z.uuid() }).meta({ id: "TaskSummary" });

/** `POST /api/tasks/{id}/inputs`: the task's inputs after the part. */
export const appendInputsResponseSchema = z.object({ total: count(), sealed: z.boolean() });

export type Task = z.output<typeof taskSchema>;
/** A task's options as the server holds them (defaults applied). */
export type TaskOptions = z.output<typeof taskOptionsSchema>;
/** The body of `POST /api/tasks`, as a client writes it (defaults left out). */
export type NewTask = z.input<typeof newTaskSchema>;
/** What `cloneTask` may change; what is left out is copied from the source. */
export type CloneChanges = z.input<typeof cloneTaskSchema>;
export type ChunkVote = z.output<typeof chunkVoteSchema>;
export type Chunk = z.output<typeof chunkSchema>;
/** A chunk's console output: the lines of the attempt whose result was kept (`done`) or of its latest failed attempt (`error`). */
export type ChunkConsole = z.output<typeof chunkConsoleViewSchema>;
export type Throughput = z.output<typeof throughputSchema>;
export type TaskSummary = z.output<typeof taskSummarySchema>;
