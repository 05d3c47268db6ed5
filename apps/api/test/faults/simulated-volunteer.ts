// A volunteer without a browser: leases blocks over HTTP sized to a work buffer, "computes"
// their chunks one by one, posts the results per block with the next lease request, and
// keeps its reports until the server takes them (as the page does), so a server that dies
// mid-request loses nothing of its work.
import { type BlockReport, blockReports, chunksOfLeases, type LeasedBlock } from "@crowdcompute/sdk";
import { sleep } from "./processes.ts";
import { reference } from "./work.ts";

export interface SimulatedVolunteer {
  /** Stops after posting what it holds. */
  stop(): Promise<void>;
  /** Dies at once: the chunks it leased (and is computing) are never reported. */
  kill(): Promise<void>;
  /** 5xx answers other than 503 (a server that is starting, or whose database is down, says 503). */
  serverErrors(): number;
  unavailable(): number;
}

/**
 * `batch`: the most chunks one lease request asks for; `bufferMs`: the work buffer it asks
 * for (by default the time one batch takes it), which the server turns into chunks by the
 * task's measured mean chunk time (2 a thread while unmeasured).
 */
export function startSimulatedVolunteer(
  base: string,
  { msPerChunk, batch = 16, bufferMs = batch * msPerChunk, threads = 4 }: { msPerChunk: number; batch?: number; bufferMs?: number; threads?: number },
): SimulatedVolunteer {
  let state: "running" | "stopping" | "killed" = "running";
  // A function, so that a check after an await reads the state kill() may have set meanwhile.
  const killed = () => state === "killed";
  let errors = 0;
  let unavailable = 0;
  const post = async (path: string, body: unknown, token?: string) => {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (response.status === 503) unavailable++;
    else if (response.status >= 500) errors++;
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as any;
  };
  const loop = async () => {
    let token: string | null = null;
    let reports: BlockReport[] = [];
    let failuresInRow = 0;
    // Stopping: post what it holds, but give up on a server that stays down.
    while (state !== "killed" && (state === "running" || (reports.length > 0 && failuresInRow < 50))) {
      try {
        token ??= (await post("/api/volunteers", {})).token as string;
        const next = state === "running" ? { max: batch, bufferMs, capabilities: { threads } } : undefined;
        const out = reports.length > 0 ? await post("/api/work/results", { results: reports, ...(next ? { next } : {}) }, token!) : await post("/api/work/lease", next, token!);
        reports = [];
        failuresInRow = 0;
        const chunks = chunksOfLeases((out.leases ?? []) as LeasedBlock[]);
        if (chunks.length === 0) {
          if (state === "running") await sleep(out.retryAfterMs ?? 200);
          continue;
        }
        // Chunk by chunk: killed, it dies mid-block, its results and the rest of its blocks
        // never reported (they come back to others when the blocks' deadlines pass).
        const outcomes = [];
        for (const chunk of chunks) {
          await sleep(msPerChunk);
          if (killed()) break;
          outcomes.push({ chunk, result: reference(chunk.input as number), cpuMs: msPerChunk });
        }
        reports = blockReports(outcomes);
      } catch {
        failuresInRow++;
        await sleep(100);
      }
    }
  };
  const running = loop();
  return {
    stop: async () => {
      if (state === "running") state = "stopping";
      await running;
    },
    kill: async () => {
      state = "killed";
      await running;
    },
    serverErrors: () => errors,
    unavailable: () => unavailable,
  };
}
