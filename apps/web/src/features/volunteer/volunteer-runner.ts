import { ApiError, type ChunkReport, type Client, type Lease, type LeaseRequest, type LeaseResponse } from "@crowdcompute/sdk";
import { createSandbox, type ChunkOutcome, type Sandbox } from "@crowdcompute/sandbox";

export type RunnerState = "stopped" | "starting" | "running" | "waiting" | "paused" | "error";

export interface RunnerStats {
  state: RunnerState;
  chunksDone: number;
  chunksFailed: number;
  cpuMs: number;
  /** Chunks computed per task id in this session. */
  tasks: Record<string, number>;
  volunteerId: string | null;
  /** Credit the server granted (ms of CPU whose results won their quorum); null until known. */
  credit: number | null;
  /** Name, description and creator of the tasks this browser computes for, by task id. */
  taskInfo: Record<string, TaskInfo>;
  /** While waiting for work: when the next lease request goes out (ms since the epoch). */
  nextLeaseAt: number | null;
  message: string | null;
}

export interface TaskInfo {
  name: string;
  description: string;
  /** The creator's display name; null when it has none. */
  creator: string | null;
  creatorId: string;
}

/** Tasks and creators (by id) whose chunks this volunteer does not want. */
export interface Exclusions {
  tasks: string[];
  creators: string[];
}

export interface RunnerOptions {
  client: Client;
  storage: Storage;
  threads: number;
  /** The share of each thread's time chunks may use, 1..100. */
  cpuPercent: number;
  exclude: Exclusions;
  onChange: (stats: RunnerStats) => void;
}

const tokenKey = "crowdcompute.volunteer.token";
const maxBatch = 64;
const chunksPerThread = 4;
const backoffMs = [500, 1000, 2000, 5000, 10_000];
const heartbeatMaxMs = 10_000;
const creditRefreshMs = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The volunteer loop: lease a batch, run it in the sandbox, post the results and get the
 * next batch in the same round trip. Reports that could not be posted are kept and sent
 * again, so a network blip loses no computed chunk.
 */
export class VolunteerRunner {
  private readonly options: RunnerOptions;
  private threads: number;
  private cpuPercent: number;
  private exclude: Exclusions;
  /** The last batch: when it ended and how long the sandbox was busy with it (performance.now() ms). */
  private lastBatch = { endedAt: 0, busyMs: 0 };
  private wakeFromRest: (() => void) | null = null;
  private sandbox: Sandbox | null = null;
  private running = false;
  private wake: (() => void) | null = null;
  private readonly codeBySha = new Map<string, string>();
  /** Modules by sha256, fetched by the page (never by work code) and checked before use. */
  private readonly wasmBySha = new Map<string, Promise<Uint8Array>>();
  /** Whether this browser has a WebGPU adapter; asked once, before the first lease. */
  private webgpu = false;
  private stats: RunnerStats = { state: "stopped", chunksDone: 0, chunksFailed: 0, cpuMs: 0, tasks: {}, volunteerId: null, credit: null, taskInfo: {}, nextLeaseAt: null, message: null };

  constructor(options: RunnerOptions) {
    this.options = options;
    this.threads = options.threads;
    this.cpuPercent = checkCpuPercent(options.cpuPercent);
    this.exclude = options.exclude;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.update({ state: "starting", message: null });
    // A loop still posting the chunks of a pause simply goes on: never two loops at once.
    if (!this.looping) void this.loop();
  }

  private looping = false;

  /** Finishes the chunks in hand, posts them, then stops asking for more. */
  pause(): void {
    this.running = false;
    this.wake?.();
  }

  async setThreads(threads: number): Promise<void> {
    this.threads = threads;
    await this.sandbox?.setThreads(threads);
  }

  /** Takes effect at once: a rest under way is lengthened or cut short to fit the new share. */
  setCpuPercent(cpuPercent: number): void {
    this.cpuPercent = checkCpuPercent(cpuPercent);
    this.wakeFromRest?.();
  }

  /** From the next lease request on; chunks of newly excluded tasks already in hand still run. */
  setExclusions(exclude: Exclusions): void {
    this.exclude = exclude;
  }

  destroy(): void {
    this.pause();
    this.sandbox?.destroy();
    this.sandbox = null;
  }

  private update(patch: Partial<RunnerStats>) {
    this.stats = { ...this.stats, ...patch };
    this.options.onChange(this.stats);
  }

  private leaseRequest(): LeaseRequest {
    const { tasks, creators } = this.exclude;
    return {
      max: Math.min(maxBatch, this.threads * chunksPerThread),
      // The server stretches the batch's deadline by 100 / cpuPercent for the rests below.
      capabilities: { threads: this.threads, webgpu: this.webgpu, cpuPercent: this.cpuPercent },
      ...(tasks.length > 0 || creators.length > 0 ? { exclude: { tasks, creators } } : {}),
    };
  }

  private async volunteerClient(): Promise<Client> {
    let token = this.options.storage.getItem(tokenKey);
    if (!token) {
      token = (await this.options.client.createVolunteer("browser volunteer")).token;
      this.options.storage.setItem(tokenKey, token);
    }
    this.update({ volunteerId: subjectOf(token) });
    return this.options.client.withToken(token);
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      await this.work();
    } finally {
      this.looping = false;
      // Started again while the last reports were being posted.
      if (this.running) void this.loop();
    }
  }

  private async work(): Promise<void> {
    let failures = 0;
    /** Leases in hand, to run (also after a pause: chunks in hand are finished). */
    let leases: Lease[] = [];
    /** Reports the server has not taken yet; kept across failures. */
    let unsent: ChunkReport[] = [];
    // The next batch is leased while this one runs, and results are posted while the next one
    // runs, so workers do not wait for the network between batches (DESIGN §8).
    let ahead: Promise<LeaseResponse> | null = null;
    let posting: Promise<void> | null = null;
    // Null until we have an identity; a failure to get one is retried like any other.
    let client: Client | null = null;
    // The Idempotency-Key of the lease request whose answer has not arrived: its retry sends
    // the same key and gets those leases back, instead of leaving them to expire (DESIGN §5).
    let leaseKey: string | null = null;
    const pendingLeaseKey = () => ({ idempotencyKey: (leaseKey ??= randomKey()) });
    try {
      this.webgpu = await hasWebGpuAdapter();
      while (this.running || unsent.length > 0 || leases.length > 0 || ahead || posting) {
        try {
          client ??= await this.volunteerClient();
          if (!this.sandbox) {
            const { sandboxOrigin } = await this.options.client.config();
            this.sandbox = await createSandbox({ origin: sandboxOrigin, threads: this.threads });
          }
          if (posting) {
            const posted = posting;
            posting = null;
            await posted;
          }
          if (leases.length === 0 && ahead) {
            const fetched = ahead;
            ahead = null;
            leases = (await fetched).leases;
            leaseKey = null;
          }
          if (leases.length === 0 && unsent.length > 0) {
            // Nothing to run: post what we have and lease the next batch in one round trip.
            const reports = unsent;
            unsent = [];
            const next = this.running ? this.leaseRequest() : undefined;
            const response = await client.submitResults(reports, next, next ? pendingLeaseKey() : {}).catch((error: unknown) => {
              if (retryable(error)) unsent = [...reports, ...unsent];
              throw error;
            });
            leaseKey = null;
            this.refreshCredit(client);
            leases = response.leases ?? [];
            if (leases.length === 0 && this.running) await this.idle(response.retryAfterMs ?? 0);
          } else if (leases.length === 0 && this.running) {
            const response = await client.lease(this.leaseRequest(), pendingLeaseKey());
            leaseKey = null;
            leases = response.leases;
            if (leases.length === 0) {
              this.refreshCredit(client);
              await this.idle(response.retryAfterMs);
            }
          }
          failures = 0;
          if (leases.length > 0) {
            const batch = leases;
            leases = [];
            // Before the next lease goes out, so its deadline does not run during the rest.
            await this.restAfterLastBatch();
            if (this.running) {
              ahead = client.lease(this.leaseRequest(), pendingLeaseKey());
              ahead.catch(() => {}); // awaited, and its failure handled, next time round
            }
            this.update({ state: "running", message: null });
            const reports = [...unsent, ...(await this.runLeases(client, batch))];
            unsent = [];
            const poster = client;
            posting = poster.submitResults(reports).then(
              () => this.refreshCredit(poster),
              (error: unknown) => {
                if (retryable(error)) unsent = [...reports, ...unsent];
                throw error;
              },
            );
            posting.catch(() => {}); // awaited next time round
          }
        } catch (error) {
          if (error instanceof ApiError && error.status === 401 && client) {
            // Our identity is gone (a reset server): start over as a new volunteer.
            this.options.storage.removeItem(tokenKey);
            client = null;
            unsent = [];
            leases = [];
            ahead = null;
            posting = null;
            leaseKey = null;
            continue;
          }
          const wait = backoffMs[Math.min(failures++, backoffMs.length - 1)]!;
          this.update({ state: "error", message: `${describe(error)}; retrying in ${wait / 1000} s` });
          await sleep(wait);
        }
      }
      if (!this.running) this.update({ state: "paused", message: null });
    } catch (error) {
      this.running = false;
      this.update({ state: "error", message: describe(error) });
    }
  }

  private readonly askedAbout = new Set<string>();

  /** Fetches a task's name and description once, so the volunteer knows what runs here. */
  private learnAbout(client: Client, taskId: string): void {
    if (this.askedAbout.has(taskId)) return;
    this.askedAbout.add(taskId);
    client
      .taskSummary(taskId)
      .then(({ name, description, creator, creatorId }) =>
        this.update({ taskInfo: { ...this.stats.taskInfo, [taskId]: { name, description, creator, creatorId } } }),
      )
      .catch(() => this.askedAbout.delete(taskId));
  }

  private creditAskedAt = 0;

  /** Asks the server for this volunteer's credit, at most every few seconds; figures are a nicety, so errors are ignored. */
  private refreshCredit(client: Client): void {
    if (Date.now() - this.creditAskedAt < creditRefreshMs) return;
    this.creditAskedAt = Date.now();
    client
      .volunteerFigures()
      .then((figures) => this.update({ credit: figures.credit }))
      .catch(() => {});
  }

  private async idle(ms: number) {
    this.update({ state: "waiting", message: "no work right now", nextLeaseAt: Date.now() + ms });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
    this.update({ nextLeaseAt: null });
  }

  /**
   * Keeps each thread busy at most cpuPercent of the time: a batch that kept the sandbox busy
   * t ms is followed by t · (100 / cpuPercent − 1) ms of rest before the next one starts.
   * Resting between batches (each a few chunks per thread) rather than between chunks leaves
   * the sandbox's pipelining alone; a batch's deadline allows for the rest before it.
   */
  private async restAfterLastBatch(): Promise<void> {
    for (;;) {
      const { endedAt, busyMs } = this.lastBatch;
      const wait = endedAt + busyMs * (100 / this.cpuPercent - 1) - performance.now();
      if (wait <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wakeFromRest = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeFromRest = null;
    }
  }

  /** Runs leased chunks task by task and turns outcomes into reports for the API. */
  private async runLeases(client: Client, leases: Lease[]): Promise<ChunkReport[]> {
    const reports: ChunkReport[] = [];
    let busyMs = 0;
    for (const [taskId, group] of groupByTask(leases)) {
      const first = group[0]!;
      this.learnAbout(client, taskId);
      let code = this.codeBySha.get(first.codeSha256);
      if (code === undefined) {
        code = await client.taskCode(taskId);
        this.codeBySha.set(first.codeSha256, code);
      }
      let wasm: Uint8Array | undefined;
      if (first.wasmSha256) {
        try {
          wasm = await this.taskWasm(client, taskId, first.wasmSha256);
        } catch (error) {
          // The server sent bytes that are not the module it named: no chunk of it can run here.
          if (!(error instanceof WasmMismatch)) throw error;
          const message = truncate(error.message);
          for (const lease of group) reports.push(this.report(taskId, { key: lease.leaseId, ok: false, error: { kind: "throw", message }, cpuMs: 0 }));
          continue;
        }
      }
      const stopBeating = this.heartbeat(client, group);
      const started = performance.now();
      let outcomes: ChunkOutcome[];
      try {
        outcomes = await this.sandbox!.runBatch(
          {
            taskId,
            code,
            codeSha256: first.codeSha256,
            wasm,
            wasmSha256: first.wasmSha256,
            webgpu: this.webgpu && Boolean(first.requires?.webgpu),
            timeoutMs: first.timeoutMs,
          },
          group.map((lease) => ({ key: lease.leaseId, index: lease.index, input: lease.input, entry: lease.entry })),
        );
      } finally {
        stopBeating();
        busyMs += performance.now() - started;
        this.lastBatch = { endedAt: performance.now(), busyMs };
      }
      for (const outcome of outcomes) {
        // Cancelled by this page: the server already knows; nothing to report.
        if (!outcome.ok && outcome.error.kind === "cancelled") continue;
        reports.push(this.report(taskId, outcome));
      }
    }
    return reports;
  }

  /**
   * While a batch runs, tells the server every few seconds that its leases are alive, and
   * stops the chunks the server says are cancelled (the task stopped) or lost (taken back).
   */
  private heartbeat(client: Client, leases: Lease[]): () => void {
    const timeoutMs = leases[0]?.timeoutMs ?? 60_000;
    const everyMs = Math.max(1_000, Math.min(heartbeatMaxMs, timeoutMs / 2));
    const timer = setInterval(() => {
      client
        .heartbeat(leases.map((lease) => lease.leaseId))
        .then(({ cancelled, lost }) => {
          const stop = [...cancelled, ...lost];
          if (stop.length > 0) return this.sandbox?.cancel(stop);
        })
        // A missed beat is harmless: the lease deadline has room for several.
        .catch(() => {});
    }, everyMs);
    return () => clearInterval(timer);
  }

  /** The task's module, fetched once per sha256 and checked against it. */
  private taskWasm(client: Client, taskId: string, sha256: string): Promise<Uint8Array> {
    let wasm = this.wasmBySha.get(sha256);
    if (!wasm) {
      wasm = client.taskWasm(taskId).then(async (bytes) => {
        const actual = await sha256Hex(bytes);
        if (actual !== sha256.toLowerCase()) throw new WasmMismatch(`task ${taskId}: its wasm hashes to ${actual}, not ${sha256}`);
        return bytes;
      });
      this.wasmBySha.set(sha256, wasm);
      // A failed fetch is tried again next time; a mismatch too (the server may have been mid-deploy).
      wasm.catch(() => this.wasmBySha.delete(sha256));
    }
    return wasm;
  }

  private report(taskId: string, outcome: ChunkOutcome): ChunkReport {
    const cpuMs = Math.round(outcome.cpuMs);
    if (outcome.ok) {
      this.update({
        chunksDone: this.stats.chunksDone + 1,
        cpuMs: this.stats.cpuMs + cpuMs,
        tasks: { ...this.stats.tasks, [taskId]: (this.stats.tasks[taskId] ?? 0) + 1 },
      });
      return { leaseId: outcome.key, result: JSON.parse(outcome.resultJson) as unknown, cpuMs };
    }
    this.update({ chunksFailed: this.stats.chunksFailed + 1, cpuMs: this.stats.cpuMs + cpuMs });
    const kind = outcome.error.kind === "cancelled" ? "throw" : outcome.error.kind;
    return { leaseId: outcome.key, error: { kind, message: outcome.error.message }, cpuMs };
  }
}

class WasmMismatch extends Error {}

/** True when `navigator.gpu` gives an adapter (SwiftShader's counts: it computes, slowly). */
async function hasWebGpuAdapter(): Promise<boolean> {
  try {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    return Boolean(await gpu?.requestAdapter());
  } catch {
    return false;
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function truncate(message: string): string {
  return message.length > 1000 ? `${message.slice(0, 1000)}…` : message;
}

/**
 * Whether reports that failed to post should be posted again: yes after a network error, a
 * 5xx or a 429; no after another 4xx (the server refused them for good, and would again).
 */
/** 128 random bits as hex (crypto.randomUUID needs a secure context; a volunteer page may not be one). */
function randomKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function checkCpuPercent(cpuPercent: number): number {
  if (!Number.isInteger(cpuPercent) || cpuPercent < 1 || cpuPercent > 100) throw new RangeError(`cpuPercent must be an integer from 1 to 100, got ${cpuPercent}`);
  return cpuPercent;
}

function retryable(error: unknown): boolean {
  return !(error instanceof ApiError) || error.status >= 500 || error.status === 429;
}

function groupByTask(leases: Lease[]): Map<string, Lease[]> {
  const groups = new Map<string, Lease[]>();
  for (const lease of leases) {
    const group = groups.get(lease.taskId) ?? [];
    group.push(lease);
    groups.set(lease.taskId, group);
  }
  return groups;
}

function subjectOf(token: string): string | null {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as { sub?: string };
    return payload.sub ?? null;
  } catch {
    return null;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
