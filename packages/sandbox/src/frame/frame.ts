// Entry of the frame bootstrap: the only script of the sandbox document (DESIGN §7).
// It never runs work code itself; it hands chunks to Blob workers.
import { type Remote, expose } from "comlink";
import { CONNECT_MESSAGE, type ChunkProgress, type FrameApi, READY_MESSAGE } from "../protocol.ts";
import { WorkerPool } from "./worker-pool.ts";

/** The worker bootstrap's source, inlined by build.ts. */
declare const __CC_WORKER_SOURCE__: string;

const pool = new WorkerPool(__CC_WORKER_SOURCE__);

const api: FrameApi = {
  configure: ({ threads }) => pool.configure(threads),
  // The host passes a Comlink.proxy, which arrives here as a remote function.
  runBatch: (task, chunks, onProgress) =>
    pool.runBatch(task, chunks, onProgress as Remote<(progress: ChunkProgress) => void> | undefined),
  cancel: (keys) => pool.cancel(keys),
  ping: () => "pong",
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
  // Carries nothing, so any target origin will do; the host checks source and origin.
  parent.postMessage({ type: READY_MESSAGE }, "*");
}
