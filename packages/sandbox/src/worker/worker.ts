// Entry of the worker bootstrap: one classic Blob worker per thread, started by the frame.
import { expose } from "comlink";
import { type LoadResult, type WorkerApi, type WorkerNotice, describeError, failure } from "../protocol.ts";
import { lockDownWorkerGlobal } from "./lockdown.ts";
import { type WorkFunction, runChunk } from "./run-chunk.ts";

const notLockedDown = lockDownWorkerGlobal();

// The DOM lib types `postMessage` as Window's (with a target origin); this is a worker.
const post = (globalThis as unknown as { postMessage(message: WorkerNotice): void }).postMessage.bind(globalThis);

let loaded: { work: WorkFunction } | { error: string } = { error: "no work code was loaded" };
let queue: Promise<unknown> = Promise.resolve();

async function load(code: string): Promise<LoadResult> {
  if (notLockedDown.length > 0) {
    loaded = { error: `the sandbox could not remove ${notLockedDown.join(", ")} from the worker; refusing to run work code` };
    return { ok: false, message: loaded.error };
  }
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  try {
    const module = (await import(url)) as { default?: unknown };
    loaded =
      typeof module.default === "function"
        ? { work: module.default as WorkFunction }
        : { error: "the work code has no default export function (expected `export default function work(input, ctx) { … }`)" };
  } catch (err) {
    const name = err instanceof Error ? `${err.name}: ` : "";
    loaded = { error: `the work code failed to load: ${name}${describeError(err)}` };
  } finally {
    URL.revokeObjectURL(url);
  }
  return "error" in loaded ? { ok: false, message: loaded.error } : { ok: true };
}

const api: WorkerApi = {
  load,
  run(chunk, timeoutMs) {
    // The frame pipelines several chunks; run them one at a time so each has the thread.
    const outcome = queue.then(() =>
      "work" in loaded ? runChunk(loaded.work, chunk, timeoutMs, post) : failure(chunk.key, "throw", loaded.error, 0),
    );
    queue = outcome;
    return outcome;
  },
};

expose(api);
