// Publishing the new-task form: a clone through the server's copy of the source's inputs, or a
// new task with its inputs inline, or, when they are large or a file of lines, uploaded after in
// NDJSON parts through the SDK's one part upload (the CLI's and the job API's too).
import { ApiError, type Client, InputUploadError, inputParts, type NewTask, type Task, uploadInputParts } from "@crowdcompute/sdk";
import { formatNumber } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { chunkCount, type InputsSource } from "./task-inputs.ts";
import type { parseOptions } from "./task-options.ts";
import { inlineInputChars, type TaskFormValues } from "./use-task-form.ts";

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export interface Publication {
  values: TaskFormValues;
  options: ReturnType<typeof parseOptions>;
  /** The task a clone is made from (its inputs stay on the server), or null. */
  cloneOf: string | null;
  /** The form's inputs; null for a clone's. */
  inputs: InputsSource | null;
  /** The inputs' size as JSON text, to tell whether they fit in one request. */
  inputChars: number;
  start: boolean;
  /** What is happening, for the Publish button ("Uploading inputs… 10 of 100"). */
  onStatus: (status: string) => void;
}

/** Makes the task and, with `start`, starts it; returns it. A failed upload leaves a draft, and says so. */
export async function publishTask(client: Client, { values, options, cloneOf, inputs, inputChars, start, onStatus }: Publication): Promise<Task> {
  const { name, description, code, wasm } = values;
  if (values.mode === "same" && cloneOf) {
    // A clone: the server copies the inputs; the rest is what the form says now.
    const { replication, quorum, timeoutMs, memoryMb, maxAttempts, priority, requires, tolerance, spotCheck, allowUsers } = options;
    const task = await client.cloneTask(cloneOf, {
      name: name.trim(),
      description,
      code,
      replication,
      quorum,
      timeoutMs,
      memoryMb,
      maxAttempts,
      priority,
      requires,
      tolerance,
      spotCheck,
      allowUsers,
      ...(wasm ? { wasm: toBase64(wasm.bytes) } : {}),
    });
    return start ? client.taskAction(task.id, "start") : task;
  }
  const source = inputs!;
  // A big array goes up as NDJSON parts after the task is made, as a file of lines does.
  const inParts = source.kind === "ndjson" || (source.kind === "array" && inputChars > inlineInputChars);
  const body: NewTask = {
    name: name.trim(),
    description,
    code,
    ...options,
    ...(wasm ? { wasm: toBase64(wasm.bytes) } : {}),
    ...(source.kind === "array" && !inParts ? { inputs: source.values } : source.kind === "range" ? { range: source.range } : {}),
    start: start && !inParts,
  };
  const task = await client.createTask(body);
  if (!inParts) return task;
  // Each part at the offset the server expects, so a retried part is refused, not stored twice.
  const total = chunkCount(source);
  const parts = source.kind === "ndjson" ? inputParts(source.lines, { lines: true }) : source.kind === "array" ? inputParts(source.values) : inputParts([]);
  onStatus(`Uploading inputs… 0 of ${formatNumber(total)}`);
  try {
    await uploadInputParts(client, task.id, parts, { onProgress: (stored) => onStatus(`Uploading inputs… ${formatNumber(stored)} of ${formatNumber(total)}`) });
  } catch (error) {
    // The draft exists: say so, rather than let a second try make another one.
    const stored = error instanceof InputUploadError ? error.stored : 0;
    const p = problemOf(error instanceof InputUploadError ? error.cause : error);
    throw new ApiError({ ...p, detail: `${p.detail} — the task was saved as a draft with ${stored} of ${total} inputs (see Tasks).` });
  }
  return start ? client.taskAction(task.id, "start") : task;
}
