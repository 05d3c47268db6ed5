import { type ChunkCheckpoint, type ChunkOutcome, type ChunkProgress, createSandbox, type Sandbox } from "@crowdcompute/sandbox";
import { ApiError, type BlockReport, type Client, type LeasedBlock, type LeaseRequest, type LeaseResponse, type ResultsResponse } from "@crowdcompute/sdk";
import { approximateBytes, echoConsole, reportsForPart } from "./block-reports.ts";
import { rememberLeftBehind, takeLeftBehind } from "./left-behind.ts";
import { SinceLastBeat } from "./since-last-beat.ts";
import { TaskAssets } from "./task-assets.ts";
import { defaultVolunteerName } from "./volunteer-name.ts";

type RunnerState = "stopped" | "starting" | "running" | "waiting" | "pausing" | "paused" | "error";

export interface RunnerStats {
  state: RunnerState;
  chunksDone: number;
  chunksFailed: number;
  cpuMs: number;
  /** Chunks done per second over the last few seconds. */
  chunksPerSec: number;
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
  /** What runs in the sandbox now: parts of blocks, by task, since when (ms since the epoch). */
  running: RunningPart[];
}

export interface RunningPart {
  taskId: string;
  /** The task indexes of the part's first and last chunk. */
  firstIndex: number;
  lastIndex: number;
  chunks: number;
  since: number;
  /** The latest `ctx.progress` of the part's chunks that reported one, by chunk index. */
  progress: { index: number; fraction: number; message?: string }[];
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
  /** Echo what work code writes to its console into this page's console (off unless the volunteer asks). */
  showConsole?: boolean;
  onChange: (stats: RunnerStats) => void;
}

/** Where this browser keeps its volunteer token; the page reads it too, to show and rename the volunteer. */
export const volunteerTokenKey = "crowdcompute.volunteer.token";
const tokenKey = volunteerTokenKey;
/**
 * How long each lease asks to be kept busy. The server sizes blocks from it and each task's
 * mean chunk time; the page runs a block in parts of about `partMs` and keeps two parts in
 * the sandbox (the running one and the next, so workers never wait between them) and the
 * next block in hand, so a lease round trip has at least a part's length to come back in.
 */
const bufferMs = 4000;
const partMs = 2000;
/**
 * The most memory one sandbox worker may hold (MiB), whatever a task declares: a chunk over
 * it fails as oom. Each thread has a worker, so a page lends up to threads × this (plus what
 * the garbage collector has not yet freed: docs/architecture.md, "The sandbox").
 */
const maxMemoryMb = 1024;
const partsInSandbox = 2;
const backoffMs = [500, 1000, 2000, 5000, 10_000];
const heartbeatMaxMs = 10_000;
const creditRefreshMs = 5_000;
const rateWindowMs = 5_000;
/** Keeps a request body well under the server's 32 MiB limit (results are at most 1 MiB each). */
const maxPostBytes = 16 * 1024 * 1024;
const maxReportsPerPost = 256;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A leased block this page holds: run, being run, or waiting for its last results to post. */
interface HeldBlock {
  lease: LeasedBlock;
  /** The sandbox's chunk keys are `${seq}:${offset}`: short, and unique while the page lives. */
  seq: number;
  /** Offsets not yet handed to the sandbox, in order (reported ones, on a repeated lease request, are left out). */
  todo: number[];
  /** Offsets handed to the sandbox and not yet done. */
  running: number;
  /** The server said it is cancelled or taken back: its chunks are stopped and not reported. */
  dropped: boolean;
  /** Checkpoints an earlier attempt left, by offset: the chunk resumes from them (`ctx.resume`). */
  resume: Map<number, unknown> | null;
}

/**
 * The volunteer loop (docs/architecture.md, "The volunteer page"): lease blocks sized to the
 * work, keep the next block queued in the sandbox behind the running one, post results in
 * the background (leasing the next blocks in the same round trip when one is due), and
 * keep reports that could not be posted to send again, so a network blip loses nothing.
 */
export class VolunteerRunner {
  private readonly options: RunnerOptions;
  private threads: number;
  private cpuPercent: number;
  private exclude: Exclusions;
  private showConsole: boolean;
  private sandbox: Sandbox | null = null;
  private client: Client | null = null;
  private running = false;
  private looping = false;
  private wake: (() => void) | null = null;
  private readonly assets = new TaskAssets();
  /** Whether this browser has a WebGPU adapter; asked once, before the first lease. */
  private webgpu = false;
  private stats: RunnerStats = {
    state: "stopped",
    chunksDone: 0,
    chunksFailed: 0,
    cpuMs: 0,
    chunksPerSec: 0,
    tasks: {},
    volunteerId: null,
    credit: null,
    taskInfo: {},
    nextLeaseAt: null,
    message: null,
    running: [],
  };

  /** Blocks leased and not finished, in the order they run. */
  private held: HeldBlock[] = [];
  private nextSeq = 0;
  /** Reports the server has not taken yet; kept across failures. */
  private outbox: BlockReport[] = [];
  /** The reports of the post in flight: their blocks are no longer held, and not yet reported. */
  private postingReports: BlockReport[] = [];
  private leasing: Promise<unknown> | null = null;
  private posting: Promise<unknown> | null = null;
  /** No lease before this time (ms since the epoch): the server said there is no work, or a request failed. */
  private leaseNotBefore = 0;
  /** The volunteer token `client` speaks with. */
  private token: string | null = null;
  /** The Idempotency-Key of the lease request whose answer has not arrived: a retry gets those blocks back. */
  private leaseKey: string | null = null;
  private failures = 0;
  /** Mean wall time per chunk and thread, per task (ms), to cut blocks into parts of about `partMs`. */
  private readonly chunkMs = new Map<string, number>();
  private readonly doneAt: { t: number; n: number }[] = [];
  /** Parts handed to the sandbox and not yet ended. */
  private parts = 0;
  /** Blocks held when the volunteer paused: given back once their computed results are posted. */
  private readonly toRelease = new Set<string>();
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  /** Progress and checkpoints the next heartbeat carries. */
  private readonly sinceLastBeat = new SinceLastBeat();

  constructor(options: RunnerOptions) {
    this.options = options;
    this.threads = options.threads;
    this.cpuPercent = checkCpuPercent(options.cpuPercent);
    this.exclude = options.exclude;
    this.showConsole = options.showConsole ?? false;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.update({ state: "starting", message: null });
    // A loop still finishing the chunks of a pause simply goes on: never two loops at once.
    if (!this.looping) void this.loop();
    this.kick();
  }

  /**
   * Stops the CPU now: chunks running in the sandbox are cancelled (a chunk that does not let
   * go within 500 ms loses its worker), results already computed are posted, and every block
   * held is given back to the server, whose other volunteers get its chunks at once.
   */
  pause(): void {
    if (!this.running) return;
    this.running = false;
    if (this.looping) this.update({ state: "pausing", message: null, nextLeaseAt: null });
    const keys: string[] = [];
    for (const block of this.held) {
      if (!block.dropped) this.toRelease.add(block.lease.leaseId);
      if (block.running === 0) continue;
      for (let offset = 0; offset < block.lease.inputs.length; offset++) keys.push(`${block.seq}:${offset}`);
    }
    if (keys.length > 0) void this.sandbox?.cancel(keys).catch(() => {});
    this.kick();
  }

  async setThreads(threads: number): Promise<void> {
    this.threads = threads;
    await this.sandbox?.setThreads(threads);
  }

  /** Takes effect at once: each worker rests after each chunk to fit the new share. */
  setCpuPercent(cpuPercent: number): void {
    this.cpuPercent = checkCpuPercent(cpuPercent);
    void this.sandbox?.setCpuPercent(this.cpuPercent);
  }

  /** From the next lease request on; chunks of newly excluded tasks already in hand still run. */
  setExclusions(exclude: Exclusions): void {
    this.exclude = exclude;
  }

  /** From the next part's outcomes on. */
  setShowConsole(show: boolean): void {
    this.showConsole = show;
  }

  /**
   * The page is going away (its tab closed, reloaded or navigated): gives back in one request
   * that outlives the page every block it still answers for (held, computed but with results
   * not yet posted or in a post the unload cuts off, or waiting to be released after a pause),
   * and whatever a lease request still in flight gets, so their chunks go to other volunteers
   * now rather than at their deadline. Results not yet posted are lost with the page and
   * computed again (docs/architecture.md, "The volunteer page").
   */
  releaseOnExit(): void {
    const leaseIds = new Set<string>(this.toRelease);
    for (const block of this.held) if (!block.dropped) leaseIds.add(block.lease.leaseId);
    for (const report of [...this.postingReports, ...this.outbox]) leaseIds.add(report.leaseId);
    // A lease request in flight will be answered to no one: what it gets goes back too.
    const leaseRequestKey = this.leasing !== null && this.leaseKey !== null ? this.leaseKey : undefined;
    for (const block of this.held) block.dropped = true;
    this.running = false;
    this.held = [];
    this.outbox = [];
    this.toRelease.clear();
    if (leaseIds.size === 0 && leaseRequestKey === undefined) return;
    const volunteerId = this.token ? subjectOf(this.token) : null;
    if (volunteerId) rememberLeftBehind(this.options.storage, volunteerId, { leaseIds: [...leaseIds], ...(leaseRequestKey === undefined ? {} : { leaseRequestKey }) });
    // The browser keeps at most 64 KiB of keepalive bodies in flight: 256 ids fit with room.
    if (this.client) {
      void this.client.release([...leaseIds].slice(0, 256), { keepalive: true, ...(leaseRequestKey === undefined ? {} : { leaseRequestKey }) }).catch(() => {});
    }
  }

  destroy(): void {
    this.pause();
    this.stopHeartbeat();
    this.sandbox?.destroy();
    this.sandbox = null;
  }

  private update(patch: Partial<RunnerStats>) {
    this.stats = { ...this.stats, ...patch };
    this.options.onChange(this.stats);
  }

  private kick(): void {
    this.wake?.();
  }

  /** Resolves when something happens (a lease, a part done, a post, a setting) or after `ms`. */
  private waitForNews(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.kick(), ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private leaseRequest(): LeaseRequest {
    const { tasks, creators } = this.exclude;
    return {
      bufferMs,
      // The server stretches the deadlines by 100 / cpuPercent for the rests between chunks.
      capabilities: { threads: this.threads, webgpu: this.webgpu, cpuPercent: this.cpuPercent },
      ...(tasks.length > 0 || creators.length > 0 ? { exclude: { tasks, creators } } : {}),
    };
  }

  private async volunteerClient(): Promise<Client> {
    let token = this.options.storage.getItem(tokenKey);
    if (!token) {
      token = (await this.options.client.createVolunteer(defaultVolunteerName())).token;
      this.options.storage.setItem(tokenKey, token);
    }
    this.token = token;
    this.update({ volunteerId: subjectOf(token) });
    return this.options.client.withToken(token);
  }

  /**
   * The page may store a newer token for the same volunteer (linked to the account that
   * signed in, which lets it lease that account's private tasks): use it from now on.
   */
  private adoptStoredToken(): void {
    const stored = this.options.storage.getItem(tokenKey);
    if (!this.client || !this.token || !stored || stored === this.token || subjectOf(stored) !== subjectOf(this.token)) return;
    this.token = stored;
    this.client = this.options.client.withToken(stored);
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      this.webgpu = await hasWebGpuAdapter();
      while (this.running || this.busy()) {
        try {
          if (!this.client) {
            this.client = await this.volunteerClient();
            await this.releaseLeftBehind(this.client);
          }
          this.adoptStoredToken();
          if (!this.sandbox) {
            const { sandboxOrigin } = await this.options.client.config();
            this.sandbox = await createSandbox({ origin: sandboxOrigin, threads: this.threads, cpuPercent: this.cpuPercent, maxMemoryMb });
          }
        } catch (error) {
          await this.failed(error);
          continue;
        }
        this.step(this.client, this.sandbox);
        await this.waitForNews(this.nextWakeMs());
      }
      if (this.client) await this.releaseHeld(this.client);
      this.stopHeartbeat();
      this.update({ state: "paused", message: null, nextLeaseAt: null });
    } catch (error) {
      this.running = false;
      this.update({ state: "error", message: describe(error) });
    } finally {
      this.looping = false;
      // Started again while the last reports were being posted.
      if (this.running) void this.loop();
    }
  }

  /** Work in hand: chunks in the sandbox, blocks to run, reports unsent, or a request in flight. */
  private busy(): boolean {
    return this.held.some((block) => block.running > 0 || (this.running && block.todo.length > 0)) || this.outbox.length > 0 || this.leasing !== null || this.posting !== null;
  }

  /** One pass: hand blocks to the sandbox, post reports, lease ahead. Each starts work in the background and kicks the loop when it ends. */
  private step(client: Client, sandbox: Sandbox): void {
    if (this.running) this.feedSandbox(client, sandbox);
    const wantLease = this.running && this.leasing === null && this.wantsBlock() && Date.now() >= this.leaseNotBefore;
    if (this.posting === null && this.outbox.length > 0) this.post(client, wantLease);
    else if (wantLease) this.lease(client);
    const computing = this.held.some((block) => block.running > 0);
    if (computing && this.running) this.update({ state: "running", message: null, nextLeaseAt: null });
    else if (this.running && this.stats.state === "starting" && this.held.length === 0 && this.leasing === null && this.leaseNotBefore > Date.now()) {
      this.update({ state: "waiting", message: "no work right now", nextLeaseAt: this.leaseNotBefore });
    }
    this.ensureHeartbeat(client);
  }

  private nextWakeMs(): number {
    if (this.running && this.leasing === null && this.wantsBlock()) return Math.max(0, this.leaseNotBefore - Date.now());
    return 60_000;
  }

  /** Another block is wanted once every block in hand has gone into the sandbox. */
  private wantsBlock(): boolean {
    return !this.held.some((block) => !block.dropped && block.todo.length > 0);
  }

  /** Keeps two parts in the sandbox: the one running and the next. */
  private feedSandbox(client: Client, sandbox: Sandbox): void {
    for (const block of this.held) {
      while (this.parts < partsInSandbox && !block.dropped && block.todo.length > 0) {
        const part = block.todo.splice(0, this.partSize(block.lease.taskId));
        block.running += part.length;
        this.parts += 1;
        void this.runPart(client, sandbox, block, part).finally(() => {
          this.parts -= 1;
          this.kick();
        });
      }
      if (this.parts >= partsInSandbox) return;
    }
  }

  /** Chunks a part holds: about `partMs` of the task's work on every thread, at least 4 a thread. */
  private partSize(taskId: string): number {
    const perChunk = this.chunkMs.get(taskId);
    if (perChunk === undefined) return Number.MAX_SAFE_INTEGER;
    return Math.max(this.threads * 4, Math.ceil((partMs * this.threads) / Math.max(perChunk, 0.001)));
  }

  /** Runs chunks of one block in the sandbox and queues their report. */
  private async runPart(client: Client, sandbox: Sandbox, block: HeldBlock, offsets: number[]): Promise<void> {
    const { lease } = block;
    try {
      const task = await this.assets.sandboxTask(client, lease, this.webgpu);
      if (typeof task === "string")
        return this.queueReport(
          block,
          offsets.map((offset) => ({ key: `${block.seq}:${offset}`, ok: false, error: { kind: "throw", message: task }, cpuMs: 0 })),
          offsets,
        );
      this.learnAbout(client, lease.taskId);
      const started = performance.now();
      const part: RunningPart = {
        taskId: lease.taskId,
        firstIndex: lease.firstIndex + offsets[0]!,
        lastIndex: lease.firstIndex + offsets.at(-1)!,
        chunks: offsets.length,
        since: Date.now(),
        progress: [],
      };
      this.update({ running: [...this.stats.running, part] });
      const outcomes = await sandbox
        .runBatch(
          task,
          offsets.map((offset) => {
            const chunk = { key: `${block.seq}:${offset}`, index: lease.firstIndex + offset, input: lease.inputs[offset], entry: lease.entry };
            return block.resume?.has(offset) ? { ...chunk, resume: block.resume.get(offset) } : chunk;
          }),
          { onProgress: (progress) => this.progressed(part, lease, progress), onCheckpoint: (checkpoint) => this.checkpointed(lease, checkpoint) },
        )
        .finally(() => this.update({ running: this.stats.running.filter((other) => other !== part) }));
      this.sinceLastBeat.ended(lease.leaseId, offsets);
      if (this.showConsole) echoConsole(lease, offsets, outcomes);
      // Wall time per chunk and thread, as the sandbox delivered them (rests included).
      const perChunk = ((performance.now() - started) * Math.min(this.threads, offsets.length)) / offsets.length;
      const known = this.chunkMs.get(lease.taskId);
      this.chunkMs.set(lease.taskId, known === undefined ? perChunk : known * 0.7 + perChunk * 0.3);
      if (!block.dropped) this.queueReport(block, outcomes, offsets);
    } catch (error) {
      // The sandbox refused the code (a hash mismatch) or is gone: fail nothing on the server,
      // let the block expire and be reissued, and say what happened.
      this.update({ message: describe(error) });
    } finally {
      block.running -= offsets.length;
      this.forgetFinished();
    }
  }

  /** Keeps the latest progress of each chunk of a running part (the sandbox sends at most 4 a second a chunk). */
  private progressed(part: RunningPart, lease: LeasedBlock, progress: ChunkProgress): void {
    const offset = Number(progress.key.slice(progress.key.indexOf(":") + 1));
    const index = lease.firstIndex + offset;
    const entry = { index, fraction: progress.fraction, ...(progress.message === undefined ? {} : { message: progress.message }) };
    part.progress = [...part.progress.filter((other) => other.index !== index), entry].slice(-32);
    if (this.stats.running.includes(part)) this.update({ running: [...this.stats.running] });
    this.sinceLastBeat.progressed(lease.leaseId, offset, progress.message === undefined ? { fraction: progress.fraction } : { fraction: progress.fraction, message: progress.message });
  }

  /** Keeps the latest checkpoint of each running chunk for the next heartbeat (the sandbox sends at most 2 a second a chunk). */
  private checkpointed(lease: LeasedBlock, checkpoint: ChunkCheckpoint): void {
    const offset = Number(checkpoint.key.slice(checkpoint.key.indexOf(":") + 1));
    this.sinceLastBeat.checkpointed(lease.leaseId, offset, checkpoint.json);
  }

  /** Queues a part's reports to post and counts what it did. */
  private queueReport(block: HeldBlock, outcomes: ChunkOutcome[], offsets: number[]): void {
    const { reports, done, failed, cpuMs } = reportsForPart(block.lease.leaseId, outcomes, offsets);
    this.outbox.push(...reports);
    const taskId = block.lease.taskId;
    const now = performance.now();
    this.doneAt.push({ t: now, n: done });
    while (this.doneAt.length > 0 && now - this.doneAt[0]!.t > rateWindowMs) this.doneAt.shift();
    const recent = this.doneAt.reduce((sum, sample) => sum + sample.n, 0);
    this.update({
      chunksDone: this.stats.chunksDone + done,
      chunksFailed: this.stats.chunksFailed + failed,
      cpuMs: this.stats.cpuMs + Math.round(cpuMs),
      chunksPerSec: Math.round((recent * 1000) / rateWindowMs),
      tasks: done > 0 ? { ...this.stats.tasks, [taskId]: (this.stats.tasks[taskId] ?? 0) + done } : this.stats.tasks,
    });
  }

  /**
   * Gives the blocks still held back to the server (their results are posted by now), so
   * their chunks go to other volunteers at once rather than at their deadline. Best effort: a
   * block that could not be released simply expires.
   */
  private async releaseHeld(client: Client): Promise<void> {
    for (const block of this.held) if (!block.dropped) this.toRelease.add(block.lease.leaseId);
    const leaseIds = [...this.toRelease];
    this.toRelease.clear();
    this.held = [];
    for (let first = 0; first < leaseIds.length; first += 256) {
      await client.release(leaseIds.slice(first, first + 256)).catch(() => {});
    }
  }

  /** Gives back what an earlier page of this browser held when it went (see left-behind.ts). */
  private async releaseLeftBehind(client: Client): Promise<void> {
    const volunteerId = this.token ? subjectOf(this.token) : null;
    const left = volunteerId ? takeLeftBehind(this.options.storage, volunteerId) : null;
    if (!left) return;
    for (let first = 0; first < left.leaseIds.length; first += 256) await client.release(left.leaseIds.slice(first, first + 256)).catch(() => {});
    for (const leaseRequestKey of left.leaseRequestKeys) await client.release([], { leaseRequestKey }).catch(() => {});
  }

  /** Drops blocks with nothing left to run (their reports are in the outbox). */
  private forgetFinished(): void {
    this.held = this.held.filter((block) => block.running > 0 || (!block.dropped && block.todo.length > 0));
  }

  private lease(client: Client): void {
    const key = (this.leaseKey ??= randomKey());
    this.leasing = client
      .lease(this.leaseRequest(), { idempotencyKey: key })
      .then(
        (response) => this.leased(client, response),
        (error: unknown) => this.failed(error),
      )
      .finally(() => {
        this.leasing = null;
        this.kick();
      });
  }

  /**
   * Posts the outbox (as much as one request takes), leasing the next blocks in the same
   * round trip when one is due.
   */
  private post(client: Client, withLease: boolean): void {
    const reports: BlockReport[] = [];
    let bytes = 0;
    while (this.outbox.length > 0 && reports.length < maxReportsPerPost) {
      const size = approximateBytes(this.outbox[0]!);
      if (reports.length > 0 && bytes + size > maxPostBytes) break;
      bytes += size;
      reports.push(this.outbox.shift()!);
    }
    const next = withLease ? this.leaseRequest() : undefined;
    const key = next ? (this.leaseKey ??= randomKey()) : undefined;
    this.postingReports = reports;
    const request = client.submitResults(reports, next, key ? { idempotencyKey: key } : {}).then(
      (response: ResultsResponse) => {
        this.refreshCredit(client);
        if (next) this.leased(client, { leases: response.leases ?? [], retryAfterMs: response.retryAfterMs ?? 0 });
        else this.failures = 0;
      },
      (error: unknown) => {
        // Refused for good (a 4xx): the server would refuse them again, so they go.
        if (retryable(error)) this.outbox.unshift(...reports);
        return this.failed(error);
      },
    );
    this.posting = request.finally(() => {
      this.posting = null;
      this.postingReports = [];
      if (next) this.leasing = null;
      this.kick();
    });
    if (next) this.leasing = this.posting;
  }

  private leased(client: Client, response: LeaseResponse): void {
    this.leaseKey = null;
    this.failures = 0;
    for (const lease of response.leases) {
      const reported = new Set(lease.reportedOffsets ?? []);
      const todo = [...lease.inputs.keys()].filter((offset) => !reported.has(offset));
      const resume = lease.checkpoints?.length ? new Map(lease.checkpoints.map((checkpoint) => [checkpoint.offset, checkpoint.state])) : null;
      this.held.push({ lease, seq: this.nextSeq++, todo, running: 0, dropped: false, resume });
    }
    if (response.leases.length === 0) {
      this.refreshCredit(client);
      this.leaseNotBefore = Date.now() + response.retryAfterMs;
      if (!this.held.some((block) => block.running > 0)) this.update({ state: "waiting", message: "no work right now", nextLeaseAt: this.leaseNotBefore });
    } else this.leaseNotBefore = 0;
  }

  private async failed(error: unknown): Promise<void> {
    if (error instanceof ApiError && error.status === 401 && this.client) {
      // Our identity is gone (a reset server): start over as a new volunteer.
      this.options.storage.removeItem(tokenKey);
      this.client = null;
      this.outbox = [];
      for (const block of this.held) block.dropped = true;
      this.leaseKey = null;
      return;
    }
    const wait = backoffMs[Math.min(this.failures++, backoffMs.length - 1)]!;
    this.leaseNotBefore = Date.now() + wait;
    this.update({ state: "error", message: `${describe(error)}; retrying in ${wait / 1000} s` });
    await sleep(wait);
  }

  /**
   * While blocks are held, tells the server every few seconds that their leases are alive,
   * and stops the chunks of blocks it says are cancelled (the task stopped) or lost (taken back).
   */
  private ensureHeartbeat(client: Client): void {
    if (this.held.length === 0) {
      this.stopHeartbeat();
      return;
    }
    if (this.heartbeatTimer) return;
    const timeoutMs = Math.min(...this.held.map((block) => block.lease.timeoutMs));
    const everyMs = Math.max(1_000, Math.min(heartbeatMaxMs, timeoutMs / 2));
    this.heartbeatTimer = setInterval(() => {
      const ids = this.held.map((block) => block.lease.leaseId).slice(0, 256);
      if (ids.length === 0) return;
      const { extra, restore } = this.sinceLastBeat.take(ids);
      client
        .heartbeat(ids, extra)
        .then(({ cancelled, lost }) => {
          const stop = new Set([...cancelled, ...lost]);
          if (stop.size === 0) return;
          const keys: string[] = [];
          for (const block of this.held) {
            if (!stop.has(block.lease.leaseId)) continue;
            block.dropped = true;
            block.todo = [];
            for (let offset = 0; offset < block.lease.inputs.length; offset++) keys.push(`${block.seq}:${offset}`);
          }
          this.forgetFinished();
          return this.sandbox?.cancel(keys);
        })
        // A missed beat is harmless: the lease deadline has room for several. What it carried
        // goes with the next one, unless a chunk reported newer since.
        .catch(() => restore());
    }, everyMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private readonly askedAbout = new Set<string>();

  /** Fetches a task's name and description once, so the volunteer knows what runs here. */
  private learnAbout(client: Client, taskId: string): void {
    if (this.askedAbout.has(taskId)) return;
    this.askedAbout.add(taskId);
    client
      .taskSummary(taskId)
      .then(({ name, description, creator, creatorId }) => this.update({ taskInfo: { ...this.stats.taskInfo, [taskId]: { name, description, creator, creatorId } } }))
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
}

/** True when `navigator.gpu` gives an adapter (SwiftShader's counts: it computes, slowly). */
async function hasWebGpuAdapter(): Promise<boolean> {
  try {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    return Boolean(await gpu?.requestAdapter());
  } catch {
    return false;
  }
}

/** 128 random bits as hex (crypto.randomUUID needs a secure context; a volunteer page may not be one). */
function randomKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function checkCpuPercent(cpuPercent: number): number {
  if (!Number.isInteger(cpuPercent) || cpuPercent < 1 || cpuPercent > 100) throw new RangeError(`cpuPercent must be an integer from 1 to 100, got ${cpuPercent}`);
  return cpuPercent;
}

/**
 * Whether reports that failed to post should be posted again: yes after a network error, a
 * 5xx or a 429; no after another 4xx (the server refused them for good, and would again).
 */
function retryable(error: unknown): boolean {
  return !(error instanceof ApiError) || error.status >= 500 || error.status === 429;
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
