import { z } from "@hono/zod-openapi";
import { storableText } from "../../lib/text.ts";

export const maxCodeBytes = 1024 * 1024;
export const maxArrayInputs = 1_000_000;
export const maxWasmBytes = 16 * 1024 * 1024;

/** The bytes of base64 text (already checked to be base64). */
export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

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
    name: storableText().trim().min(1).max(200),
    description: storableText().max(10_000).default(""),
    code: storableText()
      .min(1)
      .refine((code) => new TextEncoder().encode(code).length <= maxCodeBytes, "code must be at most 1 MiB"),
    // Structure checked here, never compiled: the server does not run it (DESIGN §4).
    wasm: z
      .base64("wasm must be base64")
      .max(Math.ceil(maxWasmBytes / 3) * 4, "wasm must be at most 16 MiB")
      .superRefine((text, ctx) => {
        let bytes: Uint8Array;
        try {
          bytes = decodeBase64(text);
        } catch {
          return; // not base64: reported by the check above
        }
        if (bytes.length > maxWasmBytes) ctx.addIssue({ code: "custom", message: "wasm must be at most 16 MiB" });
        else if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) ctx.addIssue({ code: "custom", message: "wasm is not a valid WebAssembly module" });
      })
      .optional(),
    inputs: z.array(z.unknown()).min(1, "at least one input").max(maxArrayInputs).optional(),
    range: range.optional(),
    priority: z.number().int().min(-1000).max(1000).default(0),
    /** Copies of each chunk run by distinct volunteers; `quorum` of them must agree (DESIGN §5). */
    replication: z.number().int().min(1).max(16).default(1),
    quorum: z.number().int().min(1).max(16).default(1),
    timeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    maxAttempts: z.number().int().min(1).max(100).default(5),
    requires: z.object({ webgpu: z.boolean().optional() }).strict().default({}),
    allowUsers: z.array(uuid).max(1000).nullable().default(null),
    start: z.boolean().default(false),
  })
  .strict()
  // Neither: the inputs come later as NDJSON (POST /api/tasks/:id/inputs).
  .refine((t) => t.inputs === undefined || t.range === undefined, {
    message: "give at most one of `inputs` (a JSON array) or `range`",
    path: ["inputs"],
  })
  .refine((t) => t.quorum <= t.replication, { message: "quorum must be at most replication", path: ["quorum"] });

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
