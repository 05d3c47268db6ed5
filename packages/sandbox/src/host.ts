// Runs in the app page: embeds the sandbox frame and talks to it over one MessagePort.
import { TASK_MEMORY_MB } from "@crowdcompute/contract/limits";
import { proxy, type Remote, wrap } from "comlink";
import { type ChunkCheckpoint, type ChunkOutcome, type ChunkProgress, CONNECT_MESSAGE, type FrameApi, failure, MAX_THREADS, READY_MESSAGE, type SandboxChunk, type SandboxTask } from "./protocol.ts";

const wasmMismatch = "hashes to";

/**
 * Whether the sandbox failed a chunk because the task's module was not the one it names: the
 * page then drops the bytes it holds for that sha256 and fetches them again next time.
 */
export function failedOnWasmMismatch(outcome: ChunkOutcome): boolean {
  return !outcome.ok && outcome.error.kind === "throw" && outcome.error.message.startsWith("refusing to run task ") && outcome.error.message.includes(`: its wasm ${wasmMismatch} `);
}

export interface SandboxOptions {
  /** The sandbox origin, e.g. `sandboxOriginFor(new URL(location.href), 8788)` (see ./document.ts). */
  origin: string;
  /** Worker threads, 1..64. */
  threads: number;
  /** The share of each thread's time chunks may use, 1..100 (default 100): a worker rests after each chunk. */
  cpuPercent?: number;
  /**
   * The most memory one worker may hold, in MiB (1..4096, default 4096): caps every task's
   * own budget (`SandboxTask.memoryMb`). A chunk over the lower of the two fails as `oom`.
   */
  maxMemoryMb?: number;
  /** Where to put the hidden iframe; `document.body` by default. */
  container?: HTMLElement;
}

export interface RunBatchOptions {
  /** At most 4 calls a second per chunk. */
  onProgress?: (progress: ChunkProgress) => void;
  /**
   * Each `ctx.checkpoint(state)` a chunk makes (at most 2 a second a chunk), as JSON text of at
   * most 256 KiB: keep the latest, to hand to a later attempt at the chunk as `resume`.
   */
  onCheckpoint?: (checkpoint: ChunkCheckpoint) => void;
}

export interface Sandbox {
  /**
   * Runs the chunks; resolves with one outcome per chunk, in input order. Rejects if `code`
   * does not match `codeSha256`, or `wasmSha256` names a module and no `wasm` is given. A
   * `wasm` that does not match `wasmSha256` fails every chunk at once, as `throw`: the page
   * fetched the module, and the sandbox checks it here rather than trust the page. A batch of the task
   * that is running joins it: hand the next block over before this one ends and no worker
   * waits between them. When the frame dies (a chunk blew its heap), the chunks it was not
   * running run again, and those it was running run again one at a time: only a chunk that
   * kills the frame on its own fails, as `oom`.
   */
  runBatch(task: SandboxTask, chunks: SandboxChunk[], options?: RunBatchOptions): Promise<ChunkOutcome[]>;
  /**
   * Cancels chunks by key, whether running or still waiting in a batch: their outcomes are
   * `cancelled` at once, running ones see `ctx.signal` abort, and a worker that does not let
   * go within 500 ms is replaced.
   */
  cancel(keys: string[]): Promise<void>;
  setThreads(threads: number): Promise<void>;
  /** Takes effect at once: each worker rests cpuMs · (100 / cpuPercent − 1) after each chunk. */
  setCpuPercent(cpuPercent: number): Promise<void>;
  /**
   * Ends the frame now, its workers and whatever they compute with it (Pause: code that never
   * checks `ctx.signal` stops at once, not after `cancel`'s 500 ms and a `terminate()` its loop
   * may outlive). Batches running settle with every chunk `cancelled`; the next call starts a
   * fresh frame.
   */
  stop(): void;
  /** Removes the frame; batches still running reject. */
  destroy(): void;
}

const READY_TIMEOUT_MS = 15_000;
/**
 * A frame whose process died (an unbounded heap kills it) stops answering. While batches run
 * the host asks it every second which chunks its workers are running: should it die, those
 * are the suspects.
 */
const PING_INTERVAL_MS = 1000;
const PING_TIMEOUT_MS = 3000;
/**
 * Frame deaths a chunk may be in flight for before it counts as a suspect though no report
 * named it running (it may kill the frame sooner than the next report).
 */
const UNNAMED_CRASHES = 2;
const crashedMessage = "the sandbox frame died while this chunk ran on its own (out of memory?)";

type FrameEnd = "crashed" | "stopped" | "destroyed";

interface Connection {
  frame: Remote<FrameApi>;
  /** Settles when the frame is gone: "crashed" (stopped answering), "stopped" (`Sandbox.stop`) or "destroyed". */
  lost: Promise<FrameEnd>;
  close(reason: FrameEnd): void;
  /** Batches running now; the watchdog pings only while there are some. */
  busy: number;
  watched: boolean;
  /** The chunks the frame last said its workers were running. */
  running: ReadonlySet<string>;
  /** Set by `close`. */
  gone: boolean;
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
  let cpuPercent = checkCpuPercent(options.cpuPercent ?? 100);
  const maxMemoryMb = checkMemoryMb(options.maxMemoryMb ?? TASK_MEMORY_MB.max);
  let destroyed = false;
  const settings = () => ({ threads, cpuPercent, maxMemoryMb });
  /** Keys cancelled while their chunks wait to run again after a frame died. */
  const cancelled = new Set<string>();
  /**
   * A suspect runs alone, so that if the frame dies again it is the one that killed it:
   * attempts hold this shared, a suspect exclusively (a waiting suspect goes first).
   */
  const exclusive = readersWriterLock();
  let connection = Promise.resolve(await connect(origin, container, settings()));
  let verified: { code: string; sha256: string } | undefined;
  let verifiedWasm: { bytes: Uint8Array; sha256: string } | undefined;

  const current = (): Promise<Connection> => {
    if (destroyed) return Promise.reject(new Error("the sandbox was destroyed"));
    // After a failed reconnect, each call tries again.
    connection = connection.catch(() => connect(origin, container, settings()));
    return connection;
  };

  // Only while a batch runs: an idle frame costs nothing to leave alone.
  const watch = (conn: Connection): void => {
    if (conn.watched) return;
    conn.watched = true;
    const tick = async (): Promise<void> => {
      if (conn.busy === 0) return void (conn.watched = false);
      const alive = await Promise.race([
        conn.frame.running().then((keys) => {
          conn.running = new Set(keys);
          return true;
        }),
        sleep(PING_TIMEOUT_MS).then(() => false),
      ]);
      if (alive) return void setTimeout(tick, PING_INTERVAL_MS);
      // Stopped or destroyed while the ping was out: not a crash, and not ours to replace.
      if (conn.gone) return;
      conn.close("crashed");
      if (destroyed) return;
      connection = connect(origin, container, settings());
      connection.catch(() => {}); // reported by the next call to current()
    };
    setTimeout(tick, PING_INTERVAL_MS);
  };

  /**
   * After the frame died under a batch: chunks it named running are suspects, each run again
   * alone on the new frame (one that kills it again is the culprit and fails as oom); the
   * others run again together, by the same rule should the frame die again. A chunk in flight
   * through UNNAMED_CRASHES deaths is a suspect even if never named.
   */
  const recover = async (
    chunks: SandboxChunk[],
    firstCrash: ReadonlySet<string>,
    attempt: (batch: SandboxChunk[], alone: boolean) => Promise<ChunkOutcome[] | { crashed: ReadonlySet<string> }>,
  ): Promise<ChunkOutcome[]> => {
    const outcomes = new Map<string, ChunkOutcome>();
    const crashes = new Map<string, number>();
    let todo = chunks;
    let named = firstCrash;
    while (todo.length > 0) {
      const suspects: SandboxChunk[] = [];
      const others: SandboxChunk[] = [];
      for (const chunk of todo) {
        const count = (crashes.get(chunk.key) ?? 0) + 1;
        crashes.set(chunk.key, count);
        if (cancelled.has(chunk.key)) outcomes.set(chunk.key, failure(chunk.key, "cancelled", "the chunk was cancelled", 0));
        else (named.has(chunk.key) || count >= UNNAMED_CRASHES ? suspects : others).push(chunk);
      }
      for (const suspect of suspects) {
        const alone = await attempt([suspect], true);
        outcomes.set(suspect.key, Array.isArray(alone) ? alone[0]! : failure(suspect.key, "oom", crashedMessage, 0));
      }
      if (others.length === 0) break;
      const again = await attempt(others, false);
      if (Array.isArray(again)) {
        for (const outcome of again) outcomes.set(outcome.key, outcome);
        break;
      }
      todo = others;
      named = again.crashed;
    }
    for (const chunk of chunks) cancelled.delete(chunk.key);
    return chunks.map((chunk) => outcomes.get(chunk.key)!);
  };

  return {
    async runBatch(task, chunks, { onProgress, onCheckpoint } = {}) {
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
            // Not the module the task names (a server mid-deploy, or bytes altered on the way):
            // no chunk of the block can run, so they fail now rather than wait out the lease.
            const message = `refusing to run task ${task.taskId}: its wasm ${wasmMismatch} ${actual}, not ${task.wasmSha256}`;
            return chunks.map((chunk) => failure(chunk.key, "throw", message, 0));
          }
          verifiedWasm = { bytes: task.wasm, sha256: task.wasmSha256 };
        }
      }
      const progress = onProgress && proxy(onProgress);
      const checkpoint = onCheckpoint && proxy(onCheckpoint);
      /** One try on the frame there is now: the outcomes, or which chunks it was running when it died. */
      const attempt = async (batch: SandboxChunk[], alone: boolean): Promise<ChunkOutcome[] | { crashed: ReadonlySet<string> }> => {
        const release = await (alone ? exclusive.write() : exclusive.read());
        try {
          const conn = await current();
          conn.busy += 1;
          watch(conn);
          try {
            const outcome = await Promise.race([conn.frame.runBatch(task, batch, progress, checkpoint), conn.lost]);
            if (outcome === "destroyed") throw new Error("the sandbox was destroyed");
            if (outcome === "stopped") return batch.map((chunk) => failure(chunk.key, "cancelled", "the chunk was cancelled", 0));
            if (outcome === "crashed") return { crashed: conn.running };
            return outcome;
          } finally {
            conn.busy -= 1;
          }
        } finally {
          release();
        }
      };
      const first = await attempt(chunks, false);
      return Array.isArray(first) ? first : recover(chunks, first.crashed, attempt);
    },
    async cancel(keys) {
      for (const key of keys) cancelled.add(key);
      await (await current()).frame.cancel(keys);
    },
    async setThreads(value) {
      threads = checkThreads(value);
      await (await current()).frame.configure(settings());
    },
    async setCpuPercent(value) {
      cpuPercent = checkCpuPercent(value);
      await (await current()).frame.configure(settings());
    },
    stop() {
      if (destroyed) return;
      connection.then(
        (conn) => conn.close("stopped"),
        () => {},
      );
      // The next call connects afresh (see `current`).
      connection = Promise.reject(new Error("the sandbox frame was stopped"));
      connection.catch(() => {});
    },
    destroy() {
      destroyed = true;
      connection.then(
        (conn) => conn.close("destroyed"),
        () => {},
      );
    },
  };
}

async function connect(origin: string, container: HTMLElement, settings: { threads: number; cpuPercent: number; maxMemoryMb: number }): Promise<Connection> {
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
  let close!: (reason: FrameEnd) => void;
  const lost = new Promise<FrameEnd>((resolve) => {
    close = (reason) => {
      conn.gone = true;
      port1.close();
      iframe.remove();
      resolve(reason);
    };
  });
  const conn: Connection = { frame, lost, close, busy: 0, watched: false, running: new Set(), gone: false };
  await frame.configure(settings);
  return conn;
}

function checkCpuPercent(cpuPercent: number): number {
  if (!Number.isInteger(cpuPercent) || cpuPercent < 1 || cpuPercent > 100) {
    throw new RangeError(`cpuPercent must be an integer from 1 to 100, got ${cpuPercent}`);
  }
  return cpuPercent;
}

function checkMemoryMb(memoryMb: number): number {
  if (!Number.isInteger(memoryMb) || memoryMb < 1 || memoryMb > TASK_MEMORY_MB.max) {
    throw new RangeError(`maxMemoryMb must be an integer from 1 to ${TASK_MEMORY_MB.max}, got ${memoryMb}`);
  }
  return memoryMb;
}

/** Shared holders (read) or one exclusive holder (write); a waiting writer goes before later readers. */
function readersWriterLock(): { read(): Promise<() => void>; write(): Promise<() => void> } {
  let readers = 0;
  let writing = false;
  const waiting: { write: boolean; grant: () => void }[] = [];
  const pump = (): void => {
    while (waiting.length > 0) {
      const next = waiting[0]!;
      if (writing || (next.write && readers > 0)) return;
      waiting.shift();
      if (next.write) writing = true;
      else readers += 1;
      next.grant();
      if (next.write) return;
    }
  };
  const acquire = (write: boolean): Promise<() => void> =>
    new Promise((resolve) => {
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        if (write) writing = false;
        else readers -= 1;
        pump();
      };
      waiting.push({ write, grant: () => resolve(release) });
      pump();
    });
  return { read: () => acquire(false), write: () => acquire(true) };
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
