// Task inputs from the command line: a JSON array file, an NDJSON file, or a range.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { MAX_ARRAY_INPUTS } from "@crowdcompute/contract/limits";
import type { RangeInputs } from "@crowdcompute/contract/range";
import { UsageError } from "./errors.ts";

// A range's chunks as the server derives them: one definition, the contract's.
export { rangeChunkCount, rangeChunkInput as rangeChunk } from "@crowdcompute/contract/range";

/** The API's cap on an inline array (the contract's `MAX_ARRAY_INPUTS`). */
const maxArrayInputs = MAX_ARRAY_INPUTS;

/** Inputs the API can take inline in the create request; beyond these NDJSON is uploaded in parts. */
export const inlineLimits = { inputs: 100_000, bytes: 32 * 1024 * 1024 };

/** A task's inputs as `submit` sends them: inline, or streamed from the file after creating the task. */
export type PreparedInputs = { kind: "array"; items: unknown[] } | { kind: "ndjson"; path: string; count: number };

async function fileSize(path: string): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new UsageError(`--inputs: ${path} is not a file`);
    return info.size;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--inputs: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
}

/** `.json`, or content starting with `[`: one JSON array. Otherwise (`.ndjson`, `.jsonl`, …) NDJSON. */
async function isJsonArrayFile(path: string): Promise<boolean> {
  const ext = extname(path).toLowerCase();
  return ext === ".json" || (ext !== ".ndjson" && ext !== ".jsonl" && (await firstCharacter(path)) === "[");
}

/**
 * Reads `path` as a JSON array or as NDJSON (one JSON value per line; blank lines are
 * skipped), all in memory, or only its first `limit` inputs. Every mistake is a usage
 * error naming the file and line.
 */
export async function readInputsFile(path: string, limit = Number.POSITIVE_INFINITY): Promise<unknown[]> {
  const size = await fileSize(path);
  const items: unknown[] = [];
  if (await isJsonArrayFile(path)) items.push(...(await readJsonArray(path, size)).slice(0, limit));
  else {
    // NDJSON is read only as far as needed: `run --limit 10` of a huge file reads 10 lines.
    for await (const value of ndjsonValues(path)) {
      items.push(value);
      if (items.length >= limit || items.length > maxArrayInputs) break;
    }
  }
  if (items.length === 0) throw new UsageError(`--inputs: ${path} holds no inputs`);
  if (items.length > maxArrayInputs) throw new UsageError(`--inputs: ${path} holds more than ${maxArrayInputs} inputs, more than this command takes in memory`);
  return items;
}

/**
 * Checks every line of `path` (so a bad file is refused before anything is sent) and
 * decides how to send it: small inputs inline, large NDJSON streamed in parts afterwards.
 */
export async function prepareInputs(path: string): Promise<PreparedInputs> {
  const size = await fileSize(path);
  if (await isJsonArrayFile(path)) {
    const items = await readJsonArray(path, size);
    if (items.length === 0) throw new UsageError(`--inputs: ${path} holds no inputs`);
    if (items.length > maxArrayInputs || size > inlineLimits.bytes) {
      throw new UsageError(`--inputs: ${path} is too large for one JSON array (${items.length} inputs); write it as NDJSON, one value per line, and it is uploaded in parts`);
    }
    return { kind: "array", items };
  }
  // One pass: values are kept only while the file is small enough to send inline.
  let items: unknown[] | null = size <= inlineLimits.bytes ? [] : null;
  let count = 0;
  for await (const value of ndjsonValues(path)) {
    count += 1;
    if (items) items.push(value);
    if (items && items.length > inlineLimits.inputs) items = null;
  }
  if (count === 0) throw new UsageError(`--inputs: ${path} holds no inputs`);
  return items ? { kind: "array", items } : { kind: "ndjson", path, count };
}

/** The non-blank lines of an NDJSON file, in parts of at most about `maxChars` characters (the SDK's, which uploads them). */
export { ndjsonFileParts as ndjsonParts } from "@crowdcompute/sdk/node";

async function firstCharacter(path: string): Promise<string> {
  for await (const chunk of createReadStream(path, { encoding: "utf8", end: 4095 })) {
    const found = (chunk as string).trimStart();
    if (found) return found[0]!;
  }
  return "";
}

async function readJsonArray(path: string, size: number): Promise<unknown[]> {
  // A single JSON document has to be parsed whole; NDJSON is the format for big inputs.
  if (size > 512 * 1024 * 1024) throw new UsageError(`--inputs: ${path} is too large for a JSON array; write it as NDJSON`);
  let text = "";
  for await (const chunk of createReadStream(path, { encoding: "utf8" })) text += chunk as string;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--inputs: ${path} is not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new UsageError(`--inputs: ${path} must hold a JSON array, one element per chunk (or NDJSON, one value per line)`);
  return parsed;
}

async function* ndjsonValues(path: string): AsyncGenerator<unknown> {
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let number = 0;
  for await (const line of lines) {
    number += 1;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      lines.close();
      throw new UsageError(`--inputs: ${path}:${number}: not a JSON value (${(error as Error).message})`);
    }
    yield value;
  }
}

/** `a:b:step:size`: chunks of `size` values `a, a+step, …` below `b` (docs/architecture.md, "The database"). */
export function parseRange(text: string): RangeInputs {
  const example = "e.g. --range 0:1000000:1:10000 (start:end:step:size, end exclusive)";
  const parts = text.split(":");
  if (parts.length !== 4) throw new UsageError(`--range: expected start:end:step:size, got ${JSON.stringify(text)}; ${example}`);
  const [start, end, step, size] = parts.map((part, i) => {
    const n = part.trim() === "" ? Number.NaN : Number(part);
    if (!Number.isSafeInteger(n)) throw new UsageError(`--range: ${["start", "end", "step", "size"][i]} must be an integer, got ${JSON.stringify(part)}; ${example}`);
    return n;
  }) as [number, number, number, number];
  if (end <= start) throw new UsageError(`--range: end (${end}) must be greater than start (${start})`);
  if (step <= 0) throw new UsageError(`--range: step must be positive, got ${step}`);
  if (size <= 0) throw new UsageError(`--range: size must be positive, got ${size}`);
  return { start, end, step, size };
}
