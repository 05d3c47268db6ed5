// `crowdcompute submit work.js`: bundle, check the inputs, create the task (uploading large
// NDJSON inputs in parts), optionally start and follow it.
import { basename, dirname, extname, resolve } from "node:path";
import { type Client, InputUploadError, type NewTask, uploadInputParts, uploadPartChars } from "@crowdcompute/sdk";
import cliProgress from "cli-progress";
import { bundleWork } from "../bundle.ts";
import { describeError, ProblemError, UsageError } from "../errors.ts";
import { ndjsonParts, parseRange, prepareInputs, rangeChunkCount } from "../inputs.ts";
import { formatCount, isTty, paint, printJson, safe } from "../output.ts";
import type { TaskSettings } from "../task-flags.ts";
import { loadWasm } from "../wasm.ts";
import { watchTask } from "./tasks.ts";

export interface SubmitOptions extends TaskSettings {
  inputs?: string;
  wasm?: string;
  range?: string;
  watch?: boolean;
  /** With `watch`: failed chunks do not make the exit code 1. */
  allowFailures?: boolean;
}

export interface PreparedSubmission {
  task: NewTask;
  /** Large NDJSON inputs, sent after the task exists (`POST /api/tasks/:id/inputs`). */
  upload: { path: string; count: number } | null;
  /** What the task's name came from when --name was not given. */
  namedAfter: "the file" | "its directory" | null;
}

/** File names that say nothing of the work: such a task is named after its directory. */
const genericNames = new Set(["work", "worker", "index", "main", "task", "job", "mod", "module"]);

/** The name `submit` gives a task without --name: "hash-search" for hash-search/work.js, "collatz" for collatz.js. */
function defaultTaskName(file: string): { name: string; after: "the file" | "its directory" } {
  const stem = basename(file, extname(file));
  const directory = basename(dirname(resolve(file)));
  return genericNames.has(stem.toLowerCase()) && directory !== "" ? { name: directory, after: "its directory" } : { name: stem, after: "the file" };
}

/** Everything the server needs, checked here first: a usage error means nothing was sent. */
export async function prepareTask(file: string, options: SubmitOptions): Promise<PreparedSubmission> {
  if ((options.inputs === undefined) === (options.range === undefined)) {
    throw new UsageError("give exactly one of --inputs FILE (JSON array or NDJSON) or --range start:end:step:size");
  }
  const range = options.range !== undefined ? parseRange(options.range) : undefined;
  const named = defaultTaskName(file);
  const { code } = await bundleWork(file, { minify: options.minify ?? false });
  const wasm = options.wasm !== undefined ? await loadWasm(options.wasm) : undefined;
  const inputs = options.inputs !== undefined ? await prepareInputs(options.inputs) : undefined;
  const task: NewTask = {
    name: options.name ?? named.name,
    code,
    ...(wasm ? { wasm: Buffer.from(wasm).toString("base64") } : {}),
    ...(inputs?.kind === "array" ? { inputs: inputs.items } : {}),
    ...(range ? { range } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
    ...(options.memory !== undefined ? { memoryMb: options.memory } : {}),
    ...(options.attempts !== undefined ? { maxAttempts: options.attempts } : {}),
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...(options.webgpu ? { requires: { webgpu: true } } : {}),
    start: Boolean(options.start || options.watch),
  };
  return { task, upload: inputs?.kind === "ndjson" ? { path: inputs.path, count: inputs.count } : null, namedAfter: options.name === undefined ? named.after : null };
}

/** Appends the file's lines in parts through the SDK's part upload, with a progress bar on a terminal. */
async function uploadInputs(client: Client, taskId: string, { path, count }: { path: string; count: number }, quiet: boolean): Promise<void> {
  const bar =
    !quiet && isTty(process.stderr)
      ? new cliProgress.SingleBar({ format: "uploading inputs {bar} {percentage}% | {value}/{total}", stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
  bar?.start(count, 0);
  try {
    await uploadInputParts(client, taskId, ndjsonParts(path, uploadPartChars), { onProgress: (stored) => bar?.update(stored) });
  } catch (error) {
    if (!(error instanceof InputUploadError)) throw error;
    throw new ProblemError(`uploading inputs stopped at ${formatCount(error.stored)} of ${formatCount(count)} (${describeError(error.cause)}); task ${taskId} stays a draft with partial inputs`);
  } finally {
    bar?.stop();
  }
}

/** Creates the prepared task; with `watch`, follows it to the end (exit 1 unless it ends done, with no failed chunk unless `allowFailures`). */
export async function submit(client: Client, { task: newTask, upload, namedAfter }: PreparedSubmission, options: SubmitOptions): Promise<number> {
  // Large inputs go up first, into a draft: volunteers never see a half-uploaded task.
  let task = await client.createTask(upload ? { ...newTask, start: false } : newTask);
  if (upload) {
    await uploadInputs(client, task.id, upload, options.json);
    task = newTask.start ? await client.taskAction(task.id, "start") : await client.getTask(task.id);
  }
  if (options.json) printJson(task);
  else {
    const chunks = newTask.range ? rangeChunkCount(newTask.range) : task.counts.total;
    const how = upload ? ` (inputs uploaded in parts)` : "";
    const named = namedAfter ? ` (named after ${namedAfter}: --name to choose)` : "";
    console.log(`${paint("green", "created")} task ${task.id} (${safe(task.name)})${named}: ${formatCount(chunks)} chunks${how}, ${task.status}`);
    if (!options.watch) {
      if (task.status === "draft") console.log(`  start it:  crowdcompute start ${task.id}`);
      console.log(`  follow it: crowdcompute status ${task.id} --watch`);
      console.log(`  results:   crowdcompute results ${task.id} > results.ndjson`);
    }
  }
  if (options.watch) return watchTask(client, task.id, options.json, { allowFailures: options.allowFailures ?? false });
  return 0;
}
