// Task options every command that makes a task takes (`submit`, `clone`): its settings, and
// replication, quorum, tolerance and who may run it. Checked here, before anything is sent.
import type { NewTask } from "@crowdcompute/sdk";
import { type Command, InvalidArgumentError } from "commander";
import { UsageError } from "./errors.ts";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A commander parser for an integer flag from `min` to `max`. */
export function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? "∞" : max}.`);
    }
    return n;
  };
}

/** A commander parser for --spot-check: a share in (0, 1]. */
function share(name: string) {
  return (value: string): number => {
    const n = Number(value.trim());
    if (!value.trim() || !Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError(`${name} must be a share more than 0 and at most 1 (for example 0.1).`);
    return n;
  };
}

/** A commander parser for a tolerance bound: a finite number, 0 or more. */
function bound(name: string) {
  return (value: string): number => {
    const n = Number(value.trim());
    if (!value.trim() || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number of 0 or more (for example 1e-9).`);
    return n;
  };
}

function userIds(value: string): string[] {
  const ids = value
    .split(",")
    .map((id) => id.trim())
    .filter(Boolean);
  const bad = ids.find((id) => !uuid.test(id));
  if (bad !== undefined) throw new InvalidArgumentError(`--allow-users takes user ids (UUIDs), comma-separated; ${JSON.stringify(bad)} is not one.`);
  if (ids.length === 0 || ids.length > 1000) throw new InvalidArgumentError("--allow-users takes 1 to 1000 user ids, comma-separated.");
  return ids;
}

export interface TaskFlags {
  replication?: number;
  quorum?: number;
  allowUsers?: string[];
  requiresWebgpu?: boolean;
  toleranceAbs?: number;
  toleranceRel?: number;
  spotCheck?: number;
}

/** A task's settings as `submit` and `clone` take them; what `clone` is not given, the task keeps. */
export interface TaskSettings {
  name?: string;
  description?: string;
  timeout?: number;
  /** Each worker's memory budget (MiB). */
  memory?: number;
  attempts?: number;
  priority?: number;
  webgpu?: boolean;
  minify?: boolean;
  start?: boolean;
  json: boolean;
}

/** Adds the flags of `TaskSettings` but --minify to `command`; `unset` says what a flag left out means. */
export function taskSettingOptions(command: Command, unset: { name: string; memory: string; start: string }): Command {
  return command
    .option("--name <name>", `task name (default: ${unset.name})`)
    .option("--description <text>", "task description")
    .option("--timeout <ms>", "per-chunk timeout in ms", integer("--timeout", 100, 3_600_000))
    .option("--memory <mib>", `each worker's memory budget in MiB, 16..4096 (default: ${unset.memory}): a chunk over it fails as oom`, integer("--memory", 16, 4096))
    .option("--attempts <n>", "attempts per chunk before it fails", integer("--attempts", 1, 100))
    .option("--priority <n>", "order among your own tasks (higher first)", integer("--priority", -1000, 1000))
    .option("--webgpu", "only volunteers with WebGPU may run it")
    .option("--start", unset.start);
}

/** Adds --replication, --quorum, --spot-check, --tolerance-abs, --tolerance-rel, --allow-users and --requires-webgpu to `command`. */
export function taskFlagOptions(command: Command): Command {
  return command
    .option("--replication <n>", "copies of each chunk, run by distinct volunteers (default 1)", integer("--replication", 1, 16))
    .option("--quorum <n>", "how many copies must agree before a result is accepted (at most --replication)", integer("--quorum", 1, 16))
    .option("--spot-check <share>", "replicated tasks: the share of trusted volunteers' blocks copied to check them, the rest accepted on one copy (default 1: every block)", share("--spot-check"))
    .option("--tolerance-abs <x>", "replicated tasks: copies agree when their numbers differ by at most x (default: exact)", bound("--tolerance-abs"))
    .option("--tolerance-rel <x>", "replicated tasks: copies agree when their numbers differ by at most x times the larger (default: exact)", bound("--tolerance-rel"))
    .option("--allow-users <ids>", "only these users' volunteers may run it (user ids, comma-separated)", userIds)
    .option("--requires-webgpu", "only volunteers with WebGPU may run it (the same as --webgpu)");
}

/** The task fields these flags set; a quorum above the replication is a usage error. */
export function taskFlagFields(flags: TaskFlags): Partial<NewTask> {
  if (flags.quorum !== undefined && flags.quorum > (flags.replication ?? 1)) {
    throw new UsageError(`--quorum (${flags.quorum}) must be at most --replication (${flags.replication ?? 1})`);
  }
  return {
    ...(flags.replication !== undefined ? { replication: flags.replication } : {}),
    ...(flags.quorum !== undefined ? { quorum: flags.quorum } : {}),
    ...(flags.spotCheck !== undefined ? { spotCheck: flags.spotCheck } : {}),
    ...(flags.toleranceAbs !== undefined || flags.toleranceRel !== undefined
      ? { tolerance: { ...(flags.toleranceAbs !== undefined ? { abs: flags.toleranceAbs } : {}), ...(flags.toleranceRel !== undefined ? { rel: flags.toleranceRel } : {}) } }
      : {}),
    ...(flags.allowUsers !== undefined ? { allowUsers: flags.allowUsers } : {}),
    ...(flags.requiresWebgpu ? { requires: { webgpu: true } } : {}),
  };
}
