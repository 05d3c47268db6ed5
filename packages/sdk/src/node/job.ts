// The job API for Node scripts (docs/architecture.md, "The job API"): one call bundles the
// work, creates the task, uploads large inputs in parts and starts it; the handle it returns
// follows the task's progress (its event stream) and its results (the followed results
// stream), each resumed by itself after a dropped connection.
import { basename, extname } from "node:path";
import { fileURLToPath } from "node:url";
import { isFinalTaskStatus } from "@crowdcompute/contract/statuses";
import { ApiError, type Client } from "../client.ts";
import { inputParts, uploadInputParts } from "../inputs.ts";
import { escapeControlChars } from "../text.ts";
import type { ChunkConsoleEvent, ConsoleLine, NewTask, RangeInputs, ResultLine, RunningChunk, Task } from "../types.ts";
import { bundleWork, bundleWorkFunction } from "./bundle.ts";

/** A job's inputs: an array (sent whole when small, else uploaded in parts), any iterable of JSON values (uploaded in parts), or a range. */
export type JobInputs = readonly unknown[] | Iterable<unknown> | AsyncIterable<unknown> | RangeInputs;

/** The work: a module file (path or file URL; its imports are bundled), or a self-contained function. */
// biome-ignore lint/suspicious/noExplicitAny: the work function takes whatever its inputs and context are; the sandbox types neither
export type JobWork = string | URL | ((input: any, ctx: any) => unknown);

/** Every task option the API takes (`POST /api/tasks`), all optional, and how to build and send the job. */
export interface ComputeOptions extends Partial<Omit<NewTask, "code" | "inputs" | "range" | "wasm" | "start">> {
  /** A WebAssembly module for `ctx.wasm`. */
  wasm?: Uint8Array;
  /** Minify the bundled work code. */
  minify?: boolean;
  /** Start at once (default); false leaves a draft to start with `job.start()`. */
  start?: boolean;
  /** Called as inputs uploaded in parts are stored, with the count so far. */
  onUpload?: (stored: number) => void;
}

/**
 * A console line as a job's `console` listener gets it: `text` is safe to print (control
 * characters shown as escapes like `\x1b`, newlines and tabs kept: a volunteer can send any
 * text as "your code's output"), `raw` is the text exactly as it was stored.
 */
export interface JobConsoleLine extends ConsoleLine {
  raw: string;
}

/** A chunk's console output as a job's `console` listener gets it (see JobConsoleLine). */
export interface JobConsoleOutput extends Omit<ChunkConsoleEvent, "lines"> {
  lines: JobConsoleLine[];
}

/** A running chunk as a job's `chunks` listener gets it: `message` safe to print (one line, control characters escaped), `rawMessage` as the volunteer sent it. */
export interface JobRunningChunk extends RunningChunk {
  rawMessage: string | null;
}

/**
 * What a job tells its listeners. `progress` is the task as its event stream gives it;
 * `chunks` the chunks volunteers are computing now, with their latest `ctx.progress`; `console`
 * each chunk's console output as it is stored. Text a volunteer sent (console lines, progress
 * messages) comes escaped, safe to print, with the raw text beside it.
 */
export interface JobEvents {
  result: [line: ResultLine];
  progress: [task: Task];
  chunks: [running: JobRunningChunk[]];
  console: [output: JobConsoleOutput];
  error: [error: unknown];
  done: [task: Task];
}

/** Arrays up to these sizes go in the create request; beyond, as NDJSON in parts (as the CLI does). */
const inline = { inputs: 100_000, chars: 32 * 1024 * 1024 };
/** How long a job keeps reconnecting to a server it cannot reach before it reports an error. */
const unreachableLimitMs = 120_000;

function isRange(inputs: JobInputs): inputs is RangeInputs {
  return (
    typeof inputs === "object" &&
    inputs !== null &&
    !Array.isArray(inputs) &&
    !(Symbol.iterator in inputs) &&
    !(Symbol.asyncIterator in inputs) &&
    typeof (inputs as RangeInputs).start === "number" &&
    typeof (inputs as RangeInputs).end === "number" &&
    typeof (inputs as RangeInputs).size === "number"
  );
}

/**
 * Bundles `work`, creates a task over `inputs` with `options`, uploads large inputs in parts,
 * starts it, and returns its handle.
 * @example
 * const job = await compute(client, [1, 2, 3], (n) => n * n);
 * job.on("result", (r) => console.log(r.index, r.status === "done" ? r.result : r.error));
 * const task = await job.done();
 */
export async function compute(client: Client, inputs: JobInputs, work: JobWork, options: ComputeOptions = {}): Promise<Job> {
  const { wasm, minify = false, start = true, onUpload, ...taskOptions } = options;
  const path = typeof work === "string" ? work : work instanceof URL ? fileURLToPath(work) : null;
  const { code } = path !== null ? await bundleWork(path, { minify }) : await bundleWorkFunction(work as (input: never, ctx: never) => unknown, { minify });
  const base: NewTask = {
    name: path !== null ? basename(path, extname(path)) : "job",
    ...taskOptions,
    code,
    ...(wasm ? { wasm: Buffer.from(wasm).toString("base64") } : {}),
  };
  if (isRange(inputs)) return new Job(client, await client.createTask({ ...base, range: inputs, start }));
  if (Array.isArray(inputs) && inputs.length <= inline.inputs && JSON.stringify(inputs).length <= inline.chars) {
    return new Job(client, await client.createTask({ ...base, inputs: inputs as unknown[], start }));
  }
  // Large or streamed inputs go up into a draft first: volunteers never see half of them.
  let task = await client.createTask({ ...base, start: false });
  await uploadInputParts(client, task.id, inputParts(inputs as Iterable<unknown> | AsyncIterable<unknown>), { ...(onUpload ? { onProgress: onUpload } : {}) });
  task = start ? await client.taskAction(task.id, "start") : await client.getTask(task.id);
  return new Job(client, task);
}

type Listener<E extends keyof JobEvents> = (...args: JobEvents[E]) => void;

/**
 * A task being computed. Listeners: `result` (each final chunk as it is decided, from the
 * first, each once), `progress` (the task with its counts, at most every 500 ms while it
 * changes), `chunks` (the chunks volunteers are computing now, with their latest
 * `ctx.progress`), `console` (each chunk's console output, from the first, each once, all
 * before `done`), `error` (the server could not be reached for 2 minutes, or refused), `done`
 * (the task ended: done, failed or cancelled; after every `result`). Attach listeners right
 * after `compute` resolves, before awaiting anything else.
 */
export class Job {
  readonly id: string;
  /** The task as last seen. */
  task: Task;
  readonly #client: Client;
  readonly #listeners = new Map<keyof JobEvents, Set<unknown>>();
  readonly #stop = new AbortController();
  #resultsFollowed: Promise<void> | null = null;
  readonly #finished: Promise<Task>;

  constructor(client: Client, task: Task) {
    this.#client = client;
    this.id = task.id;
    this.task = task;
    this.#finished = this.#watch().then(
      async (final) => {
        await this.#resultsFollowed;
        this.#emit("done", final);
        return final;
      },
      (error: unknown) => {
        this.#emit("error", error);
        throw error;
      },
    );
    this.#finished.catch(() => {}); // reported through done() and `error`, never as unhandled
  }

  on<E extends keyof JobEvents>(event: E, listener: Listener<E>): this {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    if (event === "result") this.#followResults();
    return this;
  }

  off<E extends keyof JobEvents>(event: E, listener: Listener<E>): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /** Every final chunk as it is decided (from the first), until the task ends; each call follows anew. */
  results(options: { after?: string } = {}): AsyncGenerator<ResultLine> {
    return this.#client.results(this.id, { follow: true, signal: this.#stop.signal, retryForMs: unreachableLimitMs, ...options });
  }

  /** Resolves with the task once it has ended (done, failed or cancelled) and every `result` was emitted. */
  done(): Promise<Task> {
    return this.#finished;
  }

  /** Starts a job created with `start: false`. */
  async start(): Promise<Task> {
    return (this.task = await this.#client.taskAction(this.id, "start"));
  }

  /** Cancels the task for good; `done()` then resolves with it cancelled. */
  async cancel(): Promise<Task> {
    return (this.task = await this.#client.taskAction(this.id, "cancel"));
  }

  /** Stops following (the task goes on): pending `done()` never resolves after this. */
  close(): void {
    this.#stop.abort();
  }

  #emit<E extends keyof JobEvents>(event: E, ...args: JobEvents[E]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) (listener as Listener<E>)(...args);
  }

  #followResults(): void {
    if (this.#resultsFollowed) return;
    this.#resultsFollowed = (async () => {
      try {
        for await (const line of this.results()) this.#emit("result", line);
      } catch (error) {
        this.#emit("error", error);
      }
    })();
  }

  /** Follows the task's event stream until it ends, reconnecting after a dropped one (console output resumes after the last seen). */
  async #watch(): Promise<Task> {
    let failingSince: number | null = null;
    let delayMs = 250;
    // Listeners are attached right after `compute` resolves: console output is asked for only if one wants it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const wantsConsole = (this.#listeners.get("console")?.size ?? 0) > 0;
    let consoleAfter: string | undefined;
    for (;;) {
      try {
        const stream = this.#client.taskEventStream(this.id, {
          signal: this.#stop.signal,
          ...(wantsConsole ? (consoleAfter !== undefined ? { consoleAfter } : { console: "all" as const }) : {}),
        });
        for await (const event of stream) {
          failingSince = null;
          delayMs = 250;
          if (event.type === "progress") {
            this.task = event.task;
            this.#emit("progress", event.task);
          } else if (event.type === "chunks") this.#emit("chunks", event.items.map(escapeRunningChunk));
          else {
            consoleAfter = event.console.cursor;
            this.#emit("console", escapeConsole(event.console));
          }
        }
        // The stream ended: with the task, or because the server went (it then reconnects).
        const task = await this.#client.getTask(this.id);
        this.task = task;
        failingSince = null;
        if (isFinalTaskStatus(task.status)) return task;
      } catch (error) {
        if (this.#stop.signal.aborted) return new Promise<Task>(() => {});
        if (error instanceof ApiError && error.status < 500 && error.status !== 408 && error.status !== 429) throw error;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > unreachableLimitMs) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 5_000);
    }
  }
}

const escapeConsole = (output: ChunkConsoleEvent): JobConsoleOutput => ({
  ...output,
  lines: output.lines.map((line) => ({ ...line, text: escapeControlChars(line.text, { multiline: true }), raw: line.text })),
});

const escapeRunningChunk = (chunk: RunningChunk): JobRunningChunk => ({
  ...chunk,
  message: chunk.message === null ? null : escapeControlChars(chunk.message),
  rawMessage: chunk.message,
});
