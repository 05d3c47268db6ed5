// Uploading a task's inputs as NDJSON in parts (`POST /api/tasks/:id/inputs?offset=`), the one
// implementation the CLI, the web page and the job API share. Each part goes at the offset the
// server expects (409 otherwise), so a part whose answer was lost and is sent again is never
// stored twice (docs/architecture.md, The database). Browser-safe: no Node imports.
import { ApiError, type Client } from "./client.ts";

/** One upload request's worth of NDJSON: the API takes up to 64 MiB, smaller parts retry cheaply. */
export const uploadPartChars = 4 * 1024 * 1024;

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
 * characters, for `uploadInputParts`.
 */
export async function* inputParts(
  values: Iterable<unknown> | AsyncIterable<unknown>,
  { maxChars = uploadPartChars, lines = false }: { maxChars?: number; lines?: boolean } = {},
): AsyncGenerator<string[]> {
  let part: string[] = [];
  let size = 0;
  for await (const value of values) {
    const line = lines ? String(value) : JSON.stringify(value === undefined ? null : value);
    if (lines && !line.trim()) continue;
    if (part.length > 0 && size + line.length + 1 > maxChars) {
      yield part;
      part = [];
      size = 0;
    }
    part.push(line);
    size += line.length + 1;
  }
  if (part.length > 0) yield part;
}
