import type { Client, LeasedBlock } from "@crowdcompute/sdk";
import { SinceLastBeat } from "./since-last-beat.ts";

/**
 * While blocks are held the page beats every 3 s: the server gives a block back after 15 s
 * without a beat (its LEASE_SILENT_MS), so a vanished volunteer's chunks return after five
 * missed beats while a live one keeps its long chunk (docs/architecture.md, "Dispatch").
 */
const beatEveryMs = 3_000;
/**
 * What a chunk reports (progress, a checkpoint) goes with a beat of its own at most this long
 * after the last one, instead of waiting for the next regular beat: the creator sees it within
 * about a second, and a volunteer sends at most one beat a second ("Progress, console and
 * checkpoints").
 */
const newsEveryMs = 1_000;

/**
 * While blocks are held, tells the server every few seconds that their leases are alive (with
 * the progress and checkpoints their chunks reported since the last beat, sooner when they
 * report), and says which blocks it calls cancelled (the task stopped) or lost (taken back),
 * for the runner to stop. One beat at a time.
 */
export class Heartbeat {
  /** Progress and checkpoints the next beat carries; news of them brings that beat forward. */
  readonly sinceLastBeat = new SinceLastBeat(() => this.soon(newsEveryMs));
  private readonly held: () => readonly LeasedBlock[];
  private readonly stop: (leaseIds: Set<string>) => Promise<unknown> | undefined;
  private client: Client | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When the timer fires (ms since the epoch). */
  private dueAt = 0;
  private lastBeatAt = 0;
  private beating = false;

  /** `held`: the leases the page holds now; `stop`: stops the chunks of these leases. */
  constructor(held: () => readonly LeasedBlock[], stop: (leaseIds: Set<string>) => Promise<unknown> | undefined) {
    this.held = held;
    this.stop = stop;
  }

  /** Beats while leases are held (every 3 s, sooner with news), and not when none are. */
  keep(client: Client): void {
    this.client = client;
    if (this.held().length === 0) {
      this.end();
      return;
    }
    // The first beat 3 s after blocks come into hand (their deadlines are 15 s away), not at once.
    if (!this.timer && !this.beating) this.soon(beatEveryMs, Math.max(this.lastBeatAt, Date.now()));
  }

  end(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.client = null;
  }

  /** The next beat at most `gapMs` after `from` (the last beat), unless the timer is set sooner already. */
  private soon(gapMs: number, from = this.lastBeatAt): void {
    if (!this.client || this.beating) return;
    const at = Math.max(Date.now(), from + gapMs);
    if (this.timer && this.dueAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(() => this.beat(), at - Date.now());
  }

  private beat(): void {
    this.timer = null;
    const client = this.client;
    const ids = this.held()
      .map((lease) => lease.leaseId)
      .slice(0, 256);
    if (!client || ids.length === 0) return;
    const { extra, restore } = this.sinceLastBeat.take(ids);
    this.beating = true;
    this.lastBeatAt = Date.now();
    client
      .heartbeat(ids, extra)
      .then(({ cancelled, lost }) => {
        const stop = new Set([...cancelled, ...lost]);
        if (stop.size === 0) return;
        return this.stop(stop);
      })
      // A missed beat is harmless: the server waits for several. What it carried goes with
      // the next one, unless a chunk reported newer since.
      .catch(() => restore())
      .finally(() => {
        this.beating = false;
        if (!this.client) return;
        this.soon(beatEveryMs);
        if (this.sinceLastBeat.pending()) this.soon(newsEveryMs);
      });
  }
}
