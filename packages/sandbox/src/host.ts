// Runs in the app page: embeds the sandbox frame and talks to it over one MessagePort.
import { type Remote, proxy, wrap } from "comlink";
import {
  CONNECT_MESSAGE,
  type ChunkOutcome,
  type ChunkProgress,
  type FrameApi,
  MAX_THREADS,
  READY_MESSAGE,
  type SandboxChunk,
  type SandboxTask,
  failure,
} from "./protocol.ts";

export interface SandboxOptions {
  /** The sandbox origin, e.g. `sandboxOriginFor(new URL(location.href), 8788)` (see ./document.ts). */
  origin: string;
  /** Worker threads, 1..64. */
  threads: number;
  /** Where to put the hidden iframe; `document.body` by default. */
  container?: HTMLElement;
}

export interface RunBatchOptions {
  /** At most 4 calls a second per chunk. */
  onProgress?: (progress: ChunkProgress) => void;
}

export interface Sandbox {
  /**
   * Runs the chunks; resolves with one outcome per chunk, in input order. Rejects if `code`
   * does not match `codeSha256`, or `wasm` does not match `wasmSha256`.
   */
  runBatch(task: SandboxTask, chunks: SandboxChunk[], options?: RunBatchOptions): Promise<ChunkOutcome[]>;
  /**
   * Cancels chunks by key, whether running or still waiting in a batch: their outcomes are
   * `cancelled` at once, running ones see `ctx.signal` abort, and a worker that does not let
   * go within 500 ms is replaced.
   */
  cancel(keys: string[]): Promise<void>;
  setThreads(threads: number): Promise<void>;
  /** Removes the frame; batches still running reject. */
  destroy(): void;
}

const READY_TIMEOUT_MS = 15_000;
/** A frame whose process died (an unbounded heap kills it, DESIGN §7.4) stops answering pings. */
const PING_INTERVAL_MS = 1000;
const PING_TIMEOUT_MS = 3000;

interface Connection {
  frame: Remote<FrameApi>;
  /** Settles when the frame is gone: "crashed" (stopped answering) or "destroyed". */
  lost: Promise<"crashed" | "destroyed">;
  close(reason: "crashed" | "destroyed"): void;
  /** Batches running now; the watchdog pings only while there are some. */
  busy: number;
  watched: boolean;
}

/**
 * Embeds a sandbox frame from `origin` and connects to it.
 *
 * @example
 * const sandbox = await createSandbox({ origin: sandboxOriginFor(new URL(location.href), 8788), threads: 4 });
 * const outcomes = await sandbox.runBatch({ taskId, code, codeSha256, timeoutMs: 60_000 }, [{ key: "a", index: 0, input: 21 }]);
 */
export async function createSandbox(options: SandboxOptions): Promise<Sandbox> {
  const origin = new URL(options.origin).origin;
  const container = options.container ?? document.body;
  let threads = checkThreads(options.threads);
  let destroyed = false;
  let connection = Promise.resolve(await connect(origin, container, threads));
  let verified: { code: string; sha256: string } | undefined;
  let verifiedWasm: { bytes: Uint8Array; sha256: string } | undefined;

  const current = (): Promise<Connection> => {
    if (destroyed) return Promise.reject(new Error("the sandbox was destroyed"));
    // After a failed reconnect, each call tries again.
    connection = connection.catch(() => connect(origin, container, threads));
    return connection;
  };

  // Only while a batch runs: an idle frame costs nothing to leave alone.
  const watch = (conn: Connection): void => {
    if (conn.watched) return;
    conn.watched = true;
    const tick = async (): Promise<void> => {
      if (conn.busy === 0) return void (conn.watched = false);
      const alive = await Promise.race([conn.frame.ping().then(() => true), sleep(PING_TIMEOUT_MS).then(() => false)]);
      if (alive) return void setTimeout(tick, PING_INTERVAL_MS);
      conn.close("crashed");
      if (destroyed) return;
      connection = connect(origin, container, threads);
      connection.catch(() => {}); // reported by the next call to current()
    };
    setTimeout(tick, PING_INTERVAL_MS);
  };

  return {
    async runBatch(task, chunks, { onProgress } = {}) {
      if (verified?.code !== task.code || verified.sha256 !== task.codeSha256) {
        const actual = await sha256Hex(task.code);
        if (actual !== task.codeSha256.toLowerCase()) {
          throw new Error(`refusing to run task ${task.taskId}: its code hashes to ${actual}, not ${task.codeSha256}`);
        }
        verified = { code: task.code, sha256: task.codeSha256 };
      }
      if (task.wasmSha256 && !task.wasm) {
        throw new Error(`refusing to run task ${task.taskId}: it names a wasm module (${task.wasmSha256}) but none was given`);
      }
      if (task.wasm) {
        if (verifiedWasm?.bytes !== task.wasm || verifiedWasm.sha256 !== task.wasmSha256) {
          const actual = await sha256Hex(task.wasm);
          if (actual !== task.wasmSha256?.toLowerCase()) {
            throw new Error(`refusing to run task ${task.taskId}: its wasm hashes to ${actual}, not ${task.wasmSha256}`);
          }
          verifiedWasm = { bytes: task.wasm, sha256: task.wasmSha256 };
        }
      }
      const conn = await current();
      conn.busy += 1;
      watch(conn);
      try {
        const outcome = await Promise.race([
          conn.frame.runBatch(task, chunks, onProgress && proxy(onProgress)),
          conn.lost,
        ]);
        if (outcome === "destroyed") throw new Error("the sandbox was destroyed");
        if (outcome === "crashed") {
          // Which chunk blew up is unknown, so the whole attempt fails (DESIGN §7.4).
          return chunks.map((chunk) => failure(chunk.key, "oom", "the sandbox frame stopped responding (out of memory?)", 0));
        }
        return outcome;
      } finally {
        conn.busy -= 1;
      }
    },
    async cancel(keys) {
      await (await current()).frame.cancel(keys);
    },
    async setThreads(value) {
      threads = checkThreads(value);
      await (await current()).frame.configure({ threads });
    },
    destroy() {
      destroyed = true;
      connection.then((conn) => conn.close("destroyed"), () => {});
    },
  };
}

async function connect(origin: string, container: HTMLElement, threads: number): Promise<Connection> {
  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts allow-same-origin");
  iframe.setAttribute("aria-hidden", "true");
  iframe.title = "CrowdCompute sandbox";
  iframe.tabIndex = -1;
  iframe.style.cssText = "position:absolute;width:0;height:0;border:0;visibility:hidden";
  iframe.src = `${origin}/`;

  const ready = new Promise<void>((resolve, reject) => {
    const onMessage = (event: MessageEvent): void => {
      if (event.source !== iframe.contentWindow || event.origin !== origin) return;
      if ((event.data as { type?: unknown } | null)?.type !== READY_MESSAGE) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the sandbox at ${origin} did not start within ${READY_TIMEOUT_MS} ms (is it served there, with frame-ancestors allowing ${location.origin}?)`));
    }, READY_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      removeEventListener("message", onMessage);
    };
    addEventListener("message", onMessage);
  });
  container.append(iframe);
  try {
    await ready;
  } catch (err) {
    iframe.remove();
    throw err;
  }

  const { port1, port2 } = new MessageChannel();
  iframe.contentWindow?.postMessage({ type: CONNECT_MESSAGE }, origin, [port2]);
  const frame = wrap<FrameApi>(port1);
  let close!: (reason: "crashed" | "destroyed") => void;
  const lost = new Promise<"crashed" | "destroyed">((resolve) => {
    close = (reason) => {
      port1.close();
      iframe.remove();
      resolve(reason);
    };
  });
  const conn: Connection = { frame, lost, close, busy: 0, watched: false };
  await frame.configure({ threads });
  return conn;
}

function checkThreads(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  }
  return threads;
}

async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
