// A volunteer without a browser: leases over HTTP, "computes" for a while, posts results with
// the next lease request, and keeps its reports until the server takes them (as the page
// does), so a server that dies mid-request loses nothing of its work.
import { reference } from "./work.ts";
import { sleep } from "./processes.ts";

export interface SimulatedVolunteer {
  /** Stops after posting what it holds. */
  stop(): Promise<void>;
  /** Dies at once: the chunks it leased (and is computing) are never reported. */
  kill(): Promise<void>;
  /** 5xx answers other than 503 (a server that is starting, or whose database is down, says 503). */
  serverErrors(): number;
  unavailable(): number;
}

export function startSimulatedVolunteer(base: string, { msPerChunk, batch = 16 }: { msPerChunk: number; batch?: number }): SimulatedVolunteer {
  let state: "running" | "stopping" | "killed" = "running";
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
    let reports: { leaseId: string; result: number; cpuMs: number }[] = [];
    let failuresInRow = 0;
    // Stopping: post what it holds, but give up on a server that stays down.
    while (state !== "killed" && (state === "running" || (reports.length > 0 && failuresInRow < 50))) {
      try {
        token ??= (await post("/api/volunteers", {})).token as string;
        const next = state === "running" ? { max: batch, capabilities: { threads: 4 } } : undefined;
        const out = reports.length > 0 ? await post("/api/work/results", { results: reports, ...(next ? { next } : {}) }, token!) : await post("/api/work/lease", next, token!);
        reports = [];
        failuresInRow = 0;
        const leases = (out.leases ?? []) as { leaseId: string; input: number }[];
        if (leases.length === 0) {
          if (state === "running") await sleep(out.retryAfterMs ?? 200);
          continue;
        }
        await sleep(msPerChunk * leases.length);
        reports = leases.map((lease) => ({ leaseId: lease.leaseId, result: reference(lease.input), cpuMs: msPerChunk }));
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
