import { ApiError, type ChunkReport, type Client, type Lease, type LeaseRequest } from "@crowdcompute/sdk";
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
  message: string | null;
}

export interface RunnerOptions {
  client: Client;
  storage: Storage;
  threads: number;
  onChange: (stats: RunnerStats) => void;
}

const tokenKey = "crowdcompute.volunteer.token";
const maxBatch = 64;
const chunksPerThread = 4;
const backoffMs = [500, 1000, 2000, 5000, 10_000];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The volunteer loop: lease a batch, run it in the sandbox, post the results and get the
 * next batch in the same round trip. Reports that could not be posted are kept and sent
 * again, so a network blip loses no computed chunk.
 */
export class VolunteerRunner {
  private readonly options: RunnerOptions;
  private threads: number;
  private sandbox: Sandbox | null = null;
  private running = false;
  private wake: (() => void) | null = null;
  private readonly codeBySha = new Map<string, string>();
  private stats: RunnerStats = { state: "stopped", chunksDone: 0, chunksFailed: 0, cpuMs: 0, tasks: {}, volunteerId: null, message: null };

  constructor(options: RunnerOptions) {
    this.options = options;
    this.threads = options.threads;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.update({ state: "starting", message: null });
    void this.loop();
  }

  /** Finishes the chunks in hand, posts them, then stops asking for more. */
  pause(): void {
    this.running = false;
    this.wake?.();
  }

  async setThreads(threads: number): Promise<void> {
    this.threads = threads;
    await this.sandbox?.setThreads(threads);
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
    return { max: Math.min(maxBatch, this.threads * chunksPerThread), capabilities: { threads: this.threads } };
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
    let failures = 0;
    let leases: Lease[] = [];
    let unsent: ChunkReport[] = [];
    try {
      let client = await this.volunteerClient();
      if (!this.sandbox) {
        const { sandboxOrigin } = await this.options.client.config();
        this.sandbox = await createSandbox({ origin: sandboxOrigin, threads: this.threads });
      }
      while (this.running || unsent.length > 0) {
        try {
          if (unsent.length > 0) {
            const response = await client.submitResults(unsent, this.running ? this.leaseRequest() : undefined);
            unsent = [];
            leases = response.leases ?? [];
            if (leases.length === 0 && this.running) await this.idle(response.retryAfterMs ?? 0);
          } else if (leases.length === 0) {
            const response = await client.lease(this.leaseRequest());
            leases = response.leases;
            if (leases.length === 0) await this.idle(response.retryAfterMs);
          }
          failures = 0;
          if (leases.length > 0 && this.running) {
            this.update({ state: "running", message: null });
            unsent = await this.runLeases(client, leases);
            leases = [];
          }
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) {
            // Our identity is gone (a reset server): start over as a new volunteer.
            this.options.storage.removeItem(tokenKey);
            client = await this.volunteerClient();
            unsent = [];
            leases = [];
            continue;
          }
          const wait = backoffMs[Math.min(failures++, backoffMs.length - 1)]!;
          this.update({ state: "error", message: `${describe(error)}; retrying in ${wait / 1000} s` });
          await sleep(wait);
        }
      }
      this.update({ state: "paused", message: null });
    } catch (error) {
      this.running = false;
      this.update({ state: "error", message: describe(error) });
    }
  }

  private async idle(ms: number) {
    this.update({ state: "waiting", message: "no work right now" });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
  }

  /** Runs leased chunks task by task and turns outcomes into reports for the API. */
  private async runLeases(client: Client, leases: Lease[]): Promise<ChunkReport[]> {
    const reports: ChunkReport[] = [];
    for (const [taskId, group] of groupByTask(leases)) {
      const first = group[0]!;
      let code = this.codeBySha.get(first.codeSha256);
      if (code === undefined) {
        code = await client.taskCode(taskId);
        this.codeBySha.set(first.codeSha256, code);
      }
      const outcomes = await this.sandbox!.runBatch(
        { taskId, code, codeSha256: first.codeSha256, timeoutMs: first.timeoutMs },
        group.map((lease) => ({ key: lease.leaseId, index: lease.index, input: lease.input })),
      );
      for (const outcome of outcomes) reports.push(this.report(taskId, outcome));
    }
    return reports;
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
    return { leaseId: outcome.key, error: outcome.error, cpuMs };
  }
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
