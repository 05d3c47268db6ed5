import type { Client, LeasedBlock } from "@crowdcompute/sdk";
import { SinceLastBeat } from "./since-last-beat.ts";

const heartbeatMaxMs = 10_000;

/**
 * While blocks are held, tells the server every few seconds that their leases are alive (with
 * the progress and checkpoints their chunks reported since the last beat), and says which
 * blocks it calls cancelled (the task stopped) or lost (taken back), for the runner to stop.
 */
export class Heartbeat {
  /** Progress and checkpoints the next beat carries. */
  readonly sinceLastBeat = new SinceLastBeat();
  private readonly held: () => readonly LeasedBlock[];
  private readonly stop: (leaseIds: Set<string>) => Promise<unknown> | undefined;
  private timer: ReturnType<typeof setInterval> | null = null;

  /** `held`: the leases the page holds now; `stop`: stops the chunks of these leases. */
  constructor(held: () => readonly LeasedBlock[], stop: (leaseIds: Set<string>) => Promise<unknown> | undefined) {
    this.held = held;
    this.stop = stop;
  }

  /** Beats while leases are held (every half of the shortest lease timeout, 1 to 10 s), and not when none are. */
  keep(client: Client): void {
    const held = this.held();
    if (held.length === 0) {
      this.end();
      return;
    }
    if (this.timer) return;
    const timeoutMs = Math.min(...held.map((lease) => lease.timeoutMs));
    const everyMs = Math.max(1_000, Math.min(heartbeatMaxMs, timeoutMs / 2));
    this.timer = setInterval(() => {
      const ids = this.held()
        .map((lease) => lease.leaseId)
        .slice(0, 256);
      if (ids.length === 0) return;
      const { extra, restore } = this.sinceLastBeat.take(ids);
      client
        .heartbeat(ids, extra)
        .then(({ cancelled, lost }) => {
          const stop = new Set([...cancelled, ...lost]);
          if (stop.size === 0) return;
          return this.stop(stop);
        })
        // A missed beat is harmless: the lease deadline has room for several. What it carried
        // goes with the next one, unless a chunk reported newer since.
        .catch(() => restore());
    }, everyMs);
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
