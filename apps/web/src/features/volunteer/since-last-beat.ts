/**
 * What one heartbeat carries at most of what chunks reported since the last (the rest waits
 * for the next beat): progress entries and checkpoints (the server's limits), and characters
 * of checkpoint JSON, well under its 16 MiB body limit.
 */
const maxBeatProgress = 1024;
const maxBeatCheckpoints = 16;
const maxBeatCheckpointChars = 4 * 1024 * 1024;

type Progress = { fraction: number; message?: string };
/** The latest of each chunk, by lease id and offset. */
type Pending<T> = Map<string, Map<number, T>>;

export interface BeatExtras {
  progress?: Record<string, ({ offset: number } & Progress)[]>;
  checkpoints?: Record<string, { offset: number; state: unknown }[]>;
}

/**
 * Progress and checkpoints chunks reported since the last heartbeat, the latest of each chunk
 * (docs/architecture.md, "Progress, console and checkpoints").
 */
export class SinceLastBeat {
  private readonly progress: Pending<Progress> = new Map();
  private readonly checkpoints: Pending<string> = new Map();
  private readonly onNews: () => void;

  /** `onNews`: a chunk reported something (the heartbeat brings its next beat forward). */
  constructor(onNews: () => void = () => {}) {
    this.onNews = onNews;
  }

  progressed(leaseId: string, offset: number, progress: Progress): void {
    pendingFor(this.progress, leaseId).set(offset, progress);
    this.onNews();
  }

  checkpointed(leaseId: string, offset: number, json: string): void {
    pendingFor(this.checkpoints, leaseId).set(offset, json);
    this.onNews();
  }

  /** Whether anything waits for the next beat. */
  pending(): boolean {
    for (const pending of [this.progress, this.checkpoints] as Pending<unknown>[]) for (const byOffset of pending.values()) if (byOffset.size > 0) return true;
    return false;
  }

  /** These chunks' outcomes are in: what they said while running goes no further. */
  ended(leaseId: string, offsets: number[]): void {
    for (const offset of offsets) {
      this.progress.get(leaseId)?.delete(offset);
      this.checkpoints.get(leaseId)?.delete(offset);
    }
  }

  /**
   * What chunks of these leases reported, within a beat's bounds (the rest stays for the next
   * one), and how to put it back if the beat fails. Leases not among them say nothing more.
   */
  take(leaseIds: string[]): { extra: BeatExtras; restore: () => void } {
    const held = new Set(leaseIds);
    const progress: NonNullable<BeatExtras["progress"]> = {};
    const checkpoints: NonNullable<BeatExtras["checkpoints"]> = {};
    const taken: { pending: Pending<unknown>; leaseId: string; offset: number; value: unknown }[] = [];
    let entries = 0;
    for (const [leaseId, byOffset] of this.progress) {
      if (!held.has(leaseId)) continue;
      for (const [offset, value] of byOffset) {
        if (entries >= maxBeatProgress) break;
        (progress[leaseId] ??= []).push({ offset, ...value });
        taken.push({ pending: this.progress, leaseId, offset, value });
        entries++;
      }
    }
    let count = 0;
    let chars = 0;
    for (const [leaseId, byOffset] of this.checkpoints) {
      if (!held.has(leaseId)) continue;
      for (const [offset, json] of byOffset) {
        if (count >= maxBeatCheckpoints || (count > 0 && chars + json.length > maxBeatCheckpointChars)) break;
        (checkpoints[leaseId] ??= []).push({ offset, state: JSON.parse(json) as unknown });
        taken.push({ pending: this.checkpoints, leaseId, offset, value: json });
        count++;
        chars += json.length;
      }
    }
    for (const { pending, leaseId, offset } of taken) pending.get(leaseId)?.delete(offset);
    for (const pending of [this.progress, this.checkpoints] as Pending<unknown>[]) {
      for (const [leaseId, byOffset] of pending) if (!held.has(leaseId) || byOffset.size === 0) pending.delete(leaseId);
    }
    const restore = () => {
      // What a chunk reported since is newer: it wins.
      for (const { pending, leaseId, offset, value } of taken) {
        const byOffset = pendingFor(pending, leaseId);
        if (!byOffset.has(offset)) byOffset.set(offset, value);
      }
    };
    return { extra: { ...(entries > 0 ? { progress } : {}), ...(count > 0 ? { checkpoints } : {}) }, restore };
  }
}

function pendingFor<T>(pending: Pending<T>, leaseId: string): Map<number, T> {
  let byOffset = pending.get(leaseId);
  if (!byOffset) pending.set(leaseId, (byOffset = new Map()));
  return byOffset;
}
