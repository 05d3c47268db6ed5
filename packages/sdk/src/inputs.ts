// Uploading a task's inputs as NDJSON in parts (`POST /api/tasks/:id/inputs?offset=`), the one
// implementation the CLI, the web page and the job API share. Each part goes at the offset the
// server expects (409 otherwise), so a part whose answer was lost and is sent again is never
// stored twice (docs/architecture.md, The database). Browser-safe: no Node imports.
import { MAX_INPUT_PART_LINES } from "@crowdcompute/contract/limits";
import { ApiError, type Client } from "./client.ts";

/** One upload request's worth of NDJSON, in characters: smaller parts retry cheaply. */
export const uploadPartChars = 4 * 1024 * 1024;
/**
 * And in UTF-8 bytes, what the API counts: it takes parts of up to 8 MiB, read whole before
 * they are stored (docs/architecture.md, "Bounds on what one caller holds"); 4 Mi characters
 * of CJK text would be 12 MiB.
 */
const uploadPartBytes = 4 * 1024 * 1024;

/** The UTF-8 length of `text` (a lone surrogate counts as the 3 bytes of U+FFFD). */
function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: 2 units, 4 bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** An upload that stopped: the task keeps the first `stored` inputs (a draft stays a draft). */
export class InputUploadError extends Error {
  readonly stored: number;

  constructor(stored: number, cause: unknown) {
    super(`uploading inputs stopped after ${stored} stored (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = "InputUploadError";
    this.stored = stored;
  }
}

export interface UploadOptions {
  /** Inputs the task holds already (resuming an upload); default 0. */
  offset?: number;
  /** Seal the inputs with the last part (the task has no more); default true. */
  seal?: boolean;
  /** Called after each part is stored, with the count stored so far. */
  onProgress?: (stored: number) => void;
  /** Tries per part before giving up; default 5. */
  attempts?: number;
  /** The wait before the n-th retry of a part, in ms; default 500 · 2ⁿ. */
  backoffMs?: (attempt: number) => number;
}

type Parts = Iterable<readonly string[]> | AsyncIterable<readonly string[]>;

/**
 * Appends parts of NDJSON lines (each a JSON value) to a task created with neither `inputs`
 * nor `range`, sealing with the last part. A part that fails with a network error, a 5xx or
 * a 409 is tried again from where the server says its inputs end (the task's `counts.total`),
 * so a part that landed although its answer was lost is not sent twice. Resolves with the
 * inputs stored; throws `InputUploadError` (with what was stored) when a part keeps failing.
 */
export async function uploadInputParts(client: Pick<Client, "appendInputs" | "getTask">, taskId: string, parts: Parts, options: UploadOptions = {}): Promise<number> {
  const { seal = true, onProgress, attempts = 5, backoffMs = (attempt) => 500 * 2 ** attempt } = options;
  let stored = options.offset ?? 0;
  const iterator = (Symbol.asyncIterator in parts ? parts[Symbol.asyncIterator]() : parts[Symbol.iterator]()) as AsyncIterator<readonly string[]> | Iterator<readonly string[]>;
  // One part ahead, so that the last one is known and carries the seal.
  let next = await iterator.next();
  while (!next.done) {
    const whole = next.value;
    next = await iterator.next();
    const last = next.done === true;
    const partStart = stored;
    let part = whole;
    for (let attempt = 1; part.length > 0; attempt++) {
      try {
        stored = (await client.appendInputs(taskId, `${part.join("\n")}\n`, { offset: stored, seal: seal && last })).total;
        break;
      } catch (error) {
        const retryable = !(error instanceof ApiError) || error.status >= 500 || error.status === 409;
        if (!retryable || attempt >= attempts) throw new InputUploadError(stored, error);
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
        let total: number;
        try {
          total = (await client.getTask(taskId)).counts.total;
        } catch {
          continue; // the server is still away: try the same part again
        }
        part = whole.slice(Math.max(0, total - partStart));
        stored = Math.max(stored, total);
      }
    }
    onProgress?.(stored);
  }
  return stored;
}

/**
 * JSON values (or NDJSON lines, with `lines: true`) grouped into parts of about `maxChars`
 * characters, at most `maxBytes` UTF-8 bytes (but a single longer line) and at most `maxLines`
 * lines (the API's MAX_INPUT_PART_LINES), for `uploadInputParts`.
 */
export async function* inputParts(
  values: Iterable<unknown> | AsyncIterable<unknown>,
  { maxChars = uploadPartChars, maxBytes = uploadPartBytes, maxLines = MAX_INPUT_PART_LINES, lines = false }: { maxChars?: number; maxBytes?: number; maxLines?: number; lines?: boolean } = {},
): AsyncGenerator<string[]> {
  let part: string[] = [];
  let size = 0;
  let bytes = 0;
  for await (const value of values) {
    const line = lines ? String(value) : JSON.stringify(value === undefined ? null : value);
    if (lines && !line.trim()) continue;
    const lineBytes = utf8Bytes(line) + 1;
    if (part.length > 0 && (size + line.length + 1 > maxChars || bytes + lineBytes > maxBytes || part.length >= maxLines)) {
      yield part;
      part = [];
      size = 0;
      bytes = 0;
    }
    part.push(line);
    size += line.length + 1;
    bytes += lineBytes;
  }
  if (part.length > 0) yield part;
}
