// Task options every command that makes a task takes (`submit`, `clone`), beyond those
// `submit` has always parsed itself: replication, quorum and who may run it. Checked here,
// before anything is sent.
import type { NewTask } from "@crowdcompute/sdk";
import { type Command, InvalidArgumentError } from "commander";
import { UsageError } from "./errors.ts";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function count(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
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
}

/** Adds --replication, --quorum, --allow-users and --requires-webgpu to `command`. */
export function taskFlagOptions(command: Command): Command {
  return command
    .option("--replication <n>", "copies of each chunk, run by distinct volunteers (default 1)", count("--replication", 1, 16))
    .option("--quorum <n>", "how many copies must agree before a result is accepted (at most --replication)", count("--quorum", 1, 16))
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
    ...(flags.allowUsers !== undefined ? { allowUsers: flags.allowUsers } : {}),
    ...(flags.requiresWebgpu ? { requires: { webgpu: true } } : {}),
  };
}
