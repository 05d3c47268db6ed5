import { z } from "@hono/zod-openapi";

export const maxCodeBytes = 1024 * 1024;
export const maxArrayInputs = 1_000_000;

const uuid = z.uuid();

const range = z
  .object({
    start: z.number().int().refine(Number.isSafeInteger, "must be a safe integer"),
    end: z.number().int().refine(Number.isSafeInteger, "must be a safe integer"),
    step: z.number().int().positive().default(1),
    size: z.number().int().positive().max(1_000_000_000),
  })
  .strict()
  .refine((r) => r.end > r.start, { message: "end must be greater than start", path: ["end"] })
  .refine((r) => Math.ceil((r.end - r.start) / (r.step * r.size)) <= 2 ** 31 - 1, { message: "too many chunks", path: ["size"] });

export const createTaskBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    description: z.string().max(10_000).default(""),
    code: z
      .string()
      .min(1)
      .refine((code) => new TextEncoder().encode(code).length <= maxCodeBytes, "code must be at most 1 MiB"),
    inputs: z.array(z.unknown()).min(1, "at least one input").max(maxArrayInputs).optional(),
    range: range.optional(),
    priority: z.number().int().min(-1000).max(1000).default(0),
    // Replication and quorum land with the scheduler issue; until then only single copies are honest.
    replication: z.literal(1, { message: "replication > 1 is not supported yet" }).default(1),
    quorum: z.literal(1, { message: "quorum > 1 is not supported yet" }).default(1),
    timeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    maxAttempts: z.number().int().min(1).max(100).default(5),
    requires: z.object({ webgpu: z.boolean().optional() }).strict().default({}),
    allowUsers: z.array(uuid).max(1000).nullable().default(null),
    start: z.boolean().default(false),
  })
  .strict()
  .refine((t) => (t.inputs === undefined) !== (t.range === undefined), {
    message: "give exactly one of `inputs` (a JSON array) or `range`",
    path: ["inputs"],
  });

export const taskSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    status: z.enum(["draft", "running", "paused", "done", "failed", "cancelled"]),
    priority: z.number(),
    replication: z.number(),
    quorum: z.number(),
    timeoutMs: z.number(),
    maxAttempts: z.number(),
    requires: z.object({ webgpu: z.boolean().optional() }),
    allowUsers: z.array(z.string()).nullable(),
    codeSha256: z.string(),
    wasmSha256: z.string().nullable(),
    sealed: z.boolean(),
    counts: z.object({ total: z.number(), pending: z.number(), leased: z.number(), done: z.number(), failed: z.number() }),
    cpuMs: z.number(),
    chunksPerSec: z.number(),
    lastError: z.object({ index: z.number(), kind: z.string(), message: z.string() }).nullable(),
    aggregate: z.object({ state: z.string(), value: z.unknown().optional() }),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi("Task");

export const taskIdParams = z.object({ id: z.string() });
