// The abuse bench's normal stream (bench/abuse/harness.ts), on a worker thread of its own:
// creators reading their task (GET /api/tasks/:id every 50 ms) and lean volunteers leasing one
// chunk and reporting it, for a given time; each 2xx answer's latency, and the failures.
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { normalSource, type RawRequest, type RawResponse, rawRequest } from "./http.ts";

export interface NormalStreamOptions {
  base: string;
  creator: string;
  taskId: string;
  volunteerTokens: string[];
  readers: number;
  seconds: number;
}

export interface NormalStreamResult {
  latencies: number[];
  /** Requests that failed (any status over 299, a cut connection, or no answer in 10 s). */
  normalErrors: number;
  normalErrorSample: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function normalStream(options: NormalStreamOptions): Promise<NormalStreamResult> {
  const latencies: number[] = [];
  let normalErrors = 0;
  let normalErrorSample: string | null = null;
  const until = performance.now() + options.seconds * 1000;
  const timed = async (request: RawRequest): Promise<RawResponse> => {
    const started = performance.now();
    const response = await rawRequest(options.base, { ...request, source: normalSource, timeoutMs: 10_000 });
    if (response.status >= 200 && response.status < 300) latencies.push(performance.now() - started);
    else {
      normalErrors += 1;
      normalErrorSample ??= `${request.method ?? "GET"} ${request.path}: ${response.status} ${response.text.slice(0, 200)}`;
    }
    return response;
  };
  const reader = async () => {
    while (performance.now() < until) {
      await timed({ path: `/api/tasks/${options.taskId}`, token: options.creator });
      await sleep(50);
    }
  };
  const lean = JSON.stringify({ max: 1, capabilities: { threads: 1 } });
  const volunteer = async (token: string) => {
    while (performance.now() < until) {
      const leased = await timed({ method: "POST", path: "/api/work/lease", token, body: lean });
      const blocks = (leased.status === 200 ? (JSON.parse(leased.text).leases ?? []) : []) as { leaseId: string; inputs: unknown[] }[];
      if (blocks.length === 0) {
        await sleep(200);
        continue;
      }
      const results = blocks.map((block) => ({ leaseId: block.leaseId, results: block.inputs.map(() => 0), cpuMs: 1 }));
      await timed({ method: "POST", path: "/api/work/results", token, body: JSON.stringify({ results }) });
    }
  };
  await Promise.all([...Array.from({ length: options.readers }, reader), ...options.volunteerTokens.map(volunteer)]);
  return { latencies, normalErrors, normalErrorSample };
}

/** Runs the normal stream on a worker thread; resolves when its time is up. */
export function runNormalStream(options: NormalStreamOptions): Promise<NormalStreamResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: options });
    worker.once("message", (result: NormalStreamResult) => resolve(result));
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`the normal stream's thread exited with ${code}`));
    });
  });
}

if (!isMainThread && parentPort) {
  parentPort.postMessage(await normalStream(workerData as NormalStreamOptions));
}
