import { type ChunkOutcome, createSandbox, type Sandbox } from "@crowdcompute/sandbox";
import { ApiError, type Client, type LeaseRequest, type LeaseResponse } from "@crowdcompute/sdk";
import { reportsForPart } from "./block-reports.ts";
import { Heartbeat } from "./heartbeat.ts";
import { type HeldBlock, HeldBlocks } from "./held-blocks.ts";
import { Outbox } from "./outbox.ts";
import { releaseAll, releaseLeftBehind, releaseOnUnload } from "./release.ts";
import { type RunnerStats, StatsKeeper } from "./runner-stats.ts";
import { SandboxParts } from "./sandbox-parts.ts";
import { VolunteerIdentity } from "./volunteer-identity.ts";
import { hasWebGpuAdapter } from "./webgpu.ts";

export type { RunnerStats, RunningPart, TaskInfo } from "./runner-stats.ts";
export { volunteerTokenKey } from "./volunteer-identity.ts";

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

/**
 * How long each lease asks to be kept busy. The server sizes blocks from it and each task's
 * mean chunk time; the page runs a block in parts of about 2 s (held-blocks.ts), keeps two
 * parts in the sandbox (the running one and the next, so workers never wait between them;
 * sandbox-parts.ts) and the next block in hand, so a lease round trip has at least a part's
 * length to come back in.
 */
const bufferMs = 4000;
/**
 * A lease asked with nothing in hand may wait this long on the server for work (`waitMs`):
 * it is answered the moment a task this page may run gets chunks (docs/architecture.md,
 * "Dispatch", waiting volunteers), instead of asking again every retryAfterMs.
 */
const leaseWaitMs = 20_000;
/**
 * The most memory one sandbox worker may hold (MiB), whatever a task declares: a chunk over
 * it fails as oom. Each thread has a worker, so a page lends up to threads × this (plus what
 * the garbage collector has not yet freed: docs/architecture.md, "The sandbox").
 */
const maxMemoryMb = 1024;
const backoffMs = [500, 1000, 2000, 5000, 10_000];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The volunteer loop (docs/architecture.md, "The volunteer page"): lease blocks sized to the
 * work, keep the next block queued in the sandbox behind the running one, post results in
 * the background (leasing the next blocks in the same round trip when one is due), and
 * keep reports that could not be posted to send again (outbox.ts), so a network blip loses
 * nothing. Heartbeats (heartbeat.ts) keep the blocks held alive; volunteer-identity.ts holds
 * the volunteer it computes as, runner-stats.ts the stats the page shows.
 */
export class VolunteerRunner {
  private readonly options: RunnerOptions;
  private threads: number;
  private cpuPercent: number;
  private exclude: Exclusions;
  private showConsole: boolean;
  private sandbox: Sandbox | null = null;
  /** The client that speaks as the volunteer; null until known, and again once the server forgot it. */
  private client: Client | null = null;
  private readonly identity: VolunteerIdentity;
  private running = false;
  private looping = false;
  private wake: (() => void) | null = null;
  /** Whether this browser has a WebGPU adapter; asked once, before the first lease. */
  private webgpu = false;
  private readonly stats: StatsKeeper;
  private readonly parts: SandboxParts;

  private readonly blocks = new HeldBlocks();
  private readonly outbox = new Outbox();
  private leasing: Promise<unknown> | null = null;
  /** No lease before this time (ms since the epoch): the server said there is no work, or a request failed. */
  private leaseNotBefore = 0;
  /**
   * A lease asked ahead (blocks in hand, so it did not wait) found no work: the next one goes as
   * soon as the hand is empty, and waits, rather than after retryAfterMs (~2 s late for a task
   * created just after: docs/architecture.md, "Dispatch", waiting volunteers).
   */
  private askWhenIdle = false;
  /** Ends a lease request that waits on the server for work (`waitMs`): Pause does not wait for it. */
  private leaseWait: AbortController | null = null;
  /** The Idempotency-Key of the lease request whose answer has not arrived: a retry gets those blocks back. */
  private leaseKey: string | null = null;
  private failures = 0;
  /** Blocks held when the volunteer paused: given back once their computed results are posted. */
  private readonly toRelease = new Set<string>();
  private readonly heartbeat = new Heartbeat(
    () => this.blocks.leases,
    (leaseIds) => this.sandbox?.cancel(this.blocks.stop(leaseIds)),
  );

  constructor(options: RunnerOptions) {
    this.options = options;
    this.threads = options.threads;
    this.cpuPercent = checkCpuPercent(options.cpuPercent);
    this.exclude = options.exclude;
    this.showConsole = options.showConsole ?? false;
    this.identity = new VolunteerIdentity(options.storage, options.client);
    this.stats = new StatsKeeper(options.onChange);
    this.parts = new SandboxParts({
      blocks: this.blocks,
      stats: this.stats,
      sinceLastBeat: this.heartbeat.sinceLastBeat,
      settings: () => ({ threads: this.threads, webgpu: this.webgpu, showConsole: this.showConsole }),
      outcomes: (block, outcomes, offsets) => this.queueReport(block, outcomes, offsets),
      ended: () => this.kick(),
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stats.update({ state: "starting", message: null });
    // A loop still finishing the chunks of a pause simply goes on: never two loops at once.
    if (!this.looping) void this.loop();
    this.kick();
  }

  /**
   * Stops the CPU now: the sandbox frame running chunks is ended with its workers (a fresh
   * one starts on Resume), results already computed are posted, and every block
   * held is given back to the server, whose other volunteers get its chunks at once.
   */
  pause(): void {
    if (!this.running) return;
    this.running = false;
    if (this.looping) this.stats.update({ state: "pausing", message: null, nextLeaseAt: null });
    for (const leaseId of this.blocks.leaseIds()) this.toRelease.add(leaseId);
    // The sandbox frame goes, its workers with it: code that never checks ctx.signal stops now,
    // not after cancel's 500 ms and a terminate() its loop may outlive by ~2 s. Its parts end
    // as cancelled; Resume starts a fresh frame (docs/architecture.md, "The volunteer page").
    if (this.blocks.runningKeys().length > 0) this.sandbox?.stop();
    this.leaseWait?.abort();
    this.kick();
  }

  async setThreads(threads: number): Promise<void> {
    this.threads = threads;
    this.askAgainIfWaiting();
    await this.sandbox?.setThreads(threads);
  }

  /** Takes effect at once: each worker rests after each chunk to fit the new share. */
  setCpuPercent(cpuPercent: number): void {
    this.cpuPercent = checkCpuPercent(cpuPercent);
    this.askAgainIfWaiting();
    void this.sandbox?.setCpuPercent(this.cpuPercent);
  }

  /** From the next lease request on; chunks of newly excluded tasks already in hand still run. */
  setExclusions(exclude: Exclusions): void {
    this.exclude = exclude;
    this.askAgainIfWaiting();
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
    for (const leaseId of [...this.blocks.leaseIds(), ...this.outbox.leaseIds()]) leaseIds.add(leaseId);
    // A lease request in flight will be answered to no one: what it gets goes back too.
    const leaseRequestKey = this.leasing !== null && this.leaseKey !== null ? this.leaseKey : undefined;
    this.blocks.dropAll();
    this.running = false;
    this.blocks.clear();
    this.outbox.clear();
    this.toRelease.clear();
    releaseOnUnload(this.client, this.options.storage, this.identity.volunteerId, [...leaseIds], leaseRequestKey);
  }

  destroy(): void {
    this.pause();
    this.heartbeat.end();
    this.sandbox?.destroy();
    this.sandbox = null;
  }

  /**
   * A lease request the server holds (waitMs) says the settings it was asked with: one that
   * changed ends it (whatever its key got goes back) and the next asks with the new ones, so a
   * task that starts meanwhile is not leased at the old threads, CPU share or exclusions.
   */
  private askAgainIfWaiting(): void {
    this.leaseWait?.abort();
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

  private leaseRequest(wait = false): LeaseRequest {
    const { tasks, creators } = this.exclude;
    return {
      bufferMs,
      ...(wait ? { waitMs: leaseWaitMs } : {}),
      // The server stretches the deadlines by 100 / cpuPercent for the rests between chunks.
      capabilities: { threads: this.threads, webgpu: this.webgpu, cpuPercent: this.cpuPercent },
      ...(tasks.length > 0 || creators.length > 0 ? { exclude: { tasks, creators } } : {}),
    };
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      this.webgpu = await hasWebGpuAdapter();
      while (this.running || this.busy()) {
        try {
          if (!this.client) {
            this.client = await this.identity.connect();
            this.stats.update({ volunteerId: this.identity.volunteerId });
            await releaseLeftBehind(this.client, this.options.storage, this.identity.volunteerId);
          }
          this.client = this.identity.adoptStored() ?? this.client;
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
      this.heartbeat.end();
      this.stats.update({ state: "paused", message: null, nextLeaseAt: null });
    } catch (error) {
      this.running = false;
      this.stats.update({ state: "error", message: describe(error) });
    } finally {
      this.looping = false;
      // Started again while the last reports were being posted.
      if (this.running) void this.loop();
    }
  }

  /** Work in hand: chunks in the sandbox, blocks to run, reports unsent, or a request in flight. */
  private busy(): boolean {
    return this.blocks.busy(this.running) || !this.outbox.empty || this.leasing !== null || this.outbox.posting;
  }

  /** One pass: hand blocks to the sandbox, post reports, lease ahead. Each starts work in the background and kicks the loop when it ends. */
  private step(client: Client, sandbox: Sandbox): void {
    if (this.running) this.parts.feed(client, sandbox);
    const wantLease = this.running && this.leasing === null && this.blocks.wantsBlock() && this.leaseDue();
    if (!this.outbox.posting && !this.outbox.empty) this.post(client, wantLease);
    else if (wantLease) this.lease(client);
    if (this.blocks.computing() && this.running) this.stats.update({ state: "running", message: null, nextLeaseAt: null });
    else if (this.running && this.stats.current.state === "starting" && this.blocks.list.length === 0 && this.leasing === null && this.leaseNotBefore > Date.now()) {
      this.stats.update({ state: "waiting", message: "no work right now", nextLeaseAt: this.leaseNotBefore });
    }
    this.heartbeat.keep(client);
  }

  private leaseDue(): boolean {
    return Date.now() >= this.leaseNotBefore || (this.askWhenIdle && this.blocks.list.length === 0);
  }

  private nextWakeMs(): number {
    if (this.running && this.leasing === null && this.blocks.wantsBlock()) return this.leaseDue() ? 0 : Math.max(0, this.leaseNotBefore - Date.now());
    return 60_000;
  }

  /** Queues a part's reports to post and counts what it did. */
  private queueReport(block: HeldBlock, outcomes: ChunkOutcome[], offsets: number[]): void {
    const { reports, done, failed, cpuMs } = reportsForPart(block.lease.leaseId, outcomes, offsets);
    this.outbox.add(reports);
    this.stats.counted(block.lease.taskId, done, failed, cpuMs);
  }

  /**
   * Gives the blocks still held back to the server (their results are posted by now), so
   * their chunks go to other volunteers at once rather than at their deadline. Best effort: a
   * block that could not be released simply expires.
   */
  private async releaseHeld(client: Client): Promise<void> {
    for (const leaseId of this.blocks.leaseIds()) this.toRelease.add(leaseId);
    const leaseIds = [...this.toRelease];
    this.toRelease.clear();
    this.blocks.clear();
    await releaseAll(client, leaseIds);
  }

  private lease(client: Client): void {
    const key = (this.leaseKey ??= randomKey());
    // Nothing in hand: the server may hold the request until work comes.
    const wait = this.blocks.list.length === 0 ? new AbortController() : null;
    this.leaseWait = wait;
    // Not answered at once: the server holds it, there is no work right now.
    if (wait) {
      setTimeout(() => {
        if (this.leaseWait === wait && this.running && !this.blocks.computing()) this.stats.update({ state: "waiting", message: "no work right now", nextLeaseAt: null });
      }, 250);
    }
    this.leasing = client
      .lease(this.leaseRequest(wait !== null), { idempotencyKey: key, ...(wait ? { signal: wait.signal } : {}) })
      .then(
        (response) => this.leased(client, response, wait !== null),
        (error: unknown) => {
          if (!wait?.signal.aborted) return this.failed(error);
          // Paused, or the settings changed, while it waited: whatever it may have been given in
          // that moment goes back.
          this.leaseKey = null;
          void client.release([], { leaseRequestKey: key }).catch(() => {});
        },
      )
      .finally(() => {
        if (this.leaseWait === wait) this.leaseWait = null;
        this.leasing = null;
        this.kick();
      });
  }

  /** Posts the outbox (as much as one request takes), leasing the next blocks in the same round trip when one is due. */
  private post(client: Client, withLease: boolean): void {
    // With nothing in hand it says waitMs: no work then is answered retryAfterMs 0, and the next lease waits.
    const next = withLease ? this.leaseRequest(this.blocks.list.length === 0) : undefined;
    const key = next ? (this.leaseKey ??= randomKey()) : undefined;
    const posting = this.outbox
      .post(
        client,
        next,
        key,
        (response) => {
          this.stats.refreshCredit(client);
          if (next) this.leased(client, { leases: response.leases ?? [], retryAfterMs: response.retryAfterMs ?? 0 }, next.waitMs !== undefined);
          else this.failures = 0;
        },
        (error) => this.failed(error),
      )
      .finally(() => {
        if (next) this.leasing = null;
        this.kick();
      });
    if (next) this.leasing = posting;
  }

  /** `waited`: the request said waitMs (it was asked with nothing in hand). */
  private leased(client: Client, response: LeaseResponse, waited: boolean): void {
    this.leaseKey = null;
    this.failures = 0;
    for (const lease of response.leases) this.blocks.hold(lease);
    if (response.leases.length === 0) {
      this.stats.refreshCredit(client);
      this.leaseNotBefore = Date.now() + response.retryAfterMs;
      this.askWhenIdle = !waited;
      if (!this.blocks.computing()) this.stats.update({ state: "waiting", message: "no work right now", nextLeaseAt: this.leaseNotBefore });
    } else {
      this.leaseNotBefore = 0;
      this.askWhenIdle = false;
    }
  }

  private async failed(error: unknown): Promise<void> {
    if (error instanceof ApiError && error.status === 401 && this.client) {
      // Our identity is gone (a reset server): start over as a new volunteer.
      this.identity.forget();
      this.client = null;
      this.outbox.clear();
      this.blocks.dropAll();
      this.leaseKey = null;
      return;
    }
    const wait = backoffMs[Math.min(this.failures++, backoffMs.length - 1)]!;
    this.leaseNotBefore = Date.now() + wait;
    this.stats.update({ state: "error", message: `${describe(error)}; retrying in ${wait / 1000} s` });
    await sleep(wait);
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

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
