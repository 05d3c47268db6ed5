// `clone`, `retry-failed` and `delete`: what a creator does with a task after the fact.
import type { Client, CloneChanges } from "@crowdcompute/sdk";
import { bundleWork } from "../bundle.ts";
import { formatCount, paint, printJson, safe } from "../output.ts";
import { type TaskFlags, type TaskSettings, taskFlagFields } from "../task-flags.ts";
import { watchTask } from "./tasks.ts";

export interface CloneOptions extends TaskFlags, TaskSettings {
  code?: string;
}

/** What a clone changes, checked and bundled before anything is sent. */
export async function prepareClone(options: CloneOptions): Promise<CloneChanges> {
  const fields = taskFlagFields({ ...options, requiresWebgpu: options.requiresWebgpu || options.webgpu });
  return {
    ...(options.code !== undefined ? { code: (await bundleWork(options.code, { minify: options.minify ?? false })).code } : {}),
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
    ...(options.memory !== undefined ? { memoryMb: options.memory } : {}),
    ...(options.attempts !== undefined ? { maxAttempts: options.attempts } : {}),
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...fields,
  };
}

/**
 * A new draft with the task's inputs and options (and what `changes` gives), started with
 * `start` or `watch`; with `watch`, followed to its end as `submit --watch` does (exit 1 unless
 * it ends done, with no failed chunk unless `allowFailures`).
 */
export async function cloneTask(
  client: Client,
  id: string,
  changes: CloneChanges,
  { start = false, watch = false, allowFailures = false, json }: { start?: boolean; watch?: boolean; allowFailures?: boolean; json: boolean },
): Promise<number> {
  let task = await client.cloneTask(id, changes);
  if (start || watch) task = await client.taskAction(task.id, "start");
  if (json) printJson(task);
  else {
    console.log(`${paint("green", "cloned")} task ${id} as ${task.id} (${safe(task.name)}): ${formatCount(task.counts.total)} chunks, ${task.status}`);
    if (task.status === "draft") console.log(`  start it:  crowdcompute start ${task.id}`);
  }
  if (watch) return watchTask(client, task.id, json, { allowFailures });
  return 0;
}

export async function retryFailed(client: Client, id: string, json: boolean): Promise<number> {
  const { task, reopened } = await client.retryFailed(id);
  if (json) printJson({ ...task, reopened });
  else console.log(`task ${task.id}: ${formatCount(reopened)} failed chunk${reopened === 1 ? "" : "s"} reopened; it is ${task.status}`);
  return 0;
}

export async function deleteTask(client: Client, id: string, json: boolean): Promise<number> {
  await client.deleteTask(id);
  if (json) printJson({ id, deleted: true });
  else console.log(`task ${id} deleted, with its inputs and results`);
  return 0;
}
