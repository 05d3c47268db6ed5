// Multipart task creation: `code`, `wasm` and `inputs` as files, the options as
// fields. The form becomes the JSON body of `POST /api/tasks` before validation, so one
// schema (`createTaskBody`) validates both shapes and the route has one handler.
import type { MiddlewareHandler } from "hono";
import type { AppBindings } from "./context.ts";
import { assertJsonWithinLimits, maxBodyDepth } from "./json-limits.ts";
import { badRequest, unprocessable } from "./problem.ts";

/** The form as the OpenAPI document shows it (a plain schema: the JSON schema validates). */
export const multipartTaskForm = {
  type: "object" as const,
  required: ["name", "code"],
  properties: {
    name: { type: "string" as const },
    description: { type: "string" as const },
    code: { type: "string" as const, format: "binary", description: "the work function, an ES module (≤ 1 MiB)" },
    wasm: { type: "string" as const, format: "binary", description: "an optional WebAssembly module (≤ 16 MiB)" },
    inputs: { type: "string" as const, format: "binary", description: "a JSON array file: chunk i's input is element i" },
    range: { type: "string" as const, description: "JSON `{start, end, step, size}`, instead of inputs" },
    requires: { type: "string" as const, description: "JSON `{webgpu?}`" },
    tolerance: { type: "string" as const, description: "JSON `{abs?, rel?}` or `null`: how far numbers of agreeing copies may differ" },
    allowUsers: { type: "string" as const, description: "JSON array of user ids" },
    priority: { type: "integer" as const },
    replication: { type: "integer" as const },
    quorum: { type: "integer" as const },
    spotCheck: { type: "number" as const, description: "replicated tasks: the share of trusted volunteers' blocks copied, in (0, 1]" },
    timeoutMs: { type: "integer" as const },
    memoryMb: { type: "integer" as const },
    maxAttempts: { type: "integer" as const },
    start: { type: "boolean" as const },
  },
};

/** Fields that hold JSON rather than text. */
const jsonFields = new Set(["inputs", "range", "requires", "tolerance", "allowUsers"]);
const numberFields = new Set(["priority", "replication", "quorum", "spotCheck", "timeoutMs", "memoryMb", "maxAttempts"]);
const booleanFields = new Set(["start"]);

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

async function fieldValue(name: string, value: FormDataEntryValue): Promise<unknown> {
  if (name === "wasm") {
    if (typeof value === "string") throw unprocessable("wasm must be a file", [{ path: "wasm", message: "must be a file" }]);
    return base64(new Uint8Array(await value.arrayBuffer()));
  }
  const text = typeof value === "string" ? value : await value.text();
  if (jsonFields.has(name)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch (error) {
      throw badRequest(`${name} is not JSON: ${(error as Error).message}`, [{ path: name, message: "must be JSON" }]);
    }
    // Bounded before the form becomes a JSON body: JSON.stringify overflows on a deep value.
    assertJsonWithinLimits(parsed, { maxDepth: maxBodyDepth - 1, path: name });
    return parsed;
  }
  if (numberFields.has(name) && /^-?\d+(\.\d+)?$/.test(text.trim())) return Number(text);
  if (booleanFields.has(name) && (text === "true" || text === "false")) return text === "true";
  return text; // the schema refuses what has the wrong type, and every unknown field
}

/**
 * Turns a `multipart/form-data` `POST /api/tasks` into the JSON body the route validates.
 * Runs after the body limit, so the form is never larger than a JSON body may be.
 */
export const multipartTaskBodies: MiddlewareHandler<AppBindings> = async (c, next) => {
  if (c.req.method !== "POST" || !/^multipart\/form-data\b/i.test(c.req.header("content-type") ?? "")) return next();
  let form: FormData;
  try {
    form = await c.req.raw.formData();
  } catch {
    throw badRequest("the body is not valid multipart/form-data");
  }
  const body: Record<string, unknown> = {};
  for (const [name, value] of form.entries()) {
    if (Object.hasOwn(body, name)) throw unprocessable(`${name} is given twice`, [{ path: name, message: "given twice" }]);
    Object.defineProperty(body, name, { value: await fieldValue(name, value), enumerable: true, writable: true, configurable: true });
  }
  const headers = new Headers(c.req.raw.headers);
  headers.set("content-type", "application/json");
  headers.delete("content-length");
  c.req.raw = new Request(c.req.raw.url, { method: "POST", headers, body: JSON.stringify(body) });
  return next();
};
