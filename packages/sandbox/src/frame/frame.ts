// Entry of the frame bootstrap: the only script of the sandbox document
// (docs/architecture.md, "The sandbox").
// It never runs work code itself; it hands chunks to Blob workers.
import { expose, type Remote } from "comlink";
import { type ChunkCheckpoint, type ChunkProgress, CONNECT_MESSAGE, type FrameApi, READY_MESSAGE } from "../protocol.ts";
import { clearOriginStorage } from "./clear-storage.ts";
import { WorkerPool } from "./worker-pool.ts";

/** The worker bootstrap's source, inlined by build.ts. */
declare const __CC_WORKER_SOURCE__: string;

const pool = new WorkerPool(__CC_WORKER_SOURCE__);

const api: FrameApi = {
  configure: (options) => pool.configure(options),
  // The host passes Comlink.proxy functions, which arrive here as remote functions.
  runBatch: (task, chunks, onProgress, onCheckpoint) =>
    pool.runBatch(task, chunks, onProgress as Remote<(progress: ChunkProgress) => void> | undefined, onCheckpoint as Remote<(checkpoint: ChunkCheckpoint) => void> | undefined),
  cancel: (keys) => pool.cancel(keys),
  ping: () => "pong",
  running: () => pool.running(),
};

// Without ancestorOrigins (not Chromium) the embedder cannot be checked, so nobody connects.
const embedder = location.ancestorOrigins?.[0];

function onConnect(event: MessageEvent): void {
  if (event.source !== parent || event.origin !== embedder) return;
  if ((event.data as { type?: unknown } | null)?.type !== CONNECT_MESSAGE) return;
  const port = event.ports[0];
  if (!port) return;
  // Exactly one connection: later window messages, from anyone, are ignored.
  removeEventListener("message", onConnect);
  expose(api, port);
}

if (parent !== window) {
  addEventListener("message", onConnect);
  // Whatever an earlier session left (a crash skips the wipe at its last task switch) is gone
  // before the first task runs. Ready carries nothing, so any target origin will do; the host
  // checks source and origin.
  void clearOriginStorage().finally(() => parent.postMessage({ type: READY_MESSAGE }, "*"));
}
