import type { Candidate } from "./candidates.ts";

/** One candidate filter's answer: the running tasks it may be served, in turn order, as of `at`. */
export type CachedCandidates = { at: number; generation: number; tasks: Candidate[] };

/**
 * What this process keeps about one open database to spare the lease path round trips
 * (docs/architecture.md, Dispatch): each volunteer filter's candidate tasks for 100 ms, when
 * it last moved each creator back in the turn order, when it last swept expired leases. Made
 * with the database (`DbHandle.dispatcher`, `dispatcherOf(db)`), so two databases in one
 * process share nothing. A transaction has none of its own: it gets an empty one.
 */
export class Dispatcher {
  /** Bumped when a task is created, started, resumed or reopened: answers from before are stale. */
  generation = 0;
  /** Each filter's last answer (candidates.ts). */
  readonly candidates = new Map<string, CachedCandidates>();
  /** Candidate queries under way: requests that find an answer expired together share one. */
  readonly candidateQueries = new Map<string, { generation: number; tasks: Promise<Candidate[]> }>();
  /** When each creator was last moved to the back of the turn order from here (lease.ts). */
  readonly markedAt = new Map<string, number>();
  /** When a lease request last swept expired leases (`sweepExpiredLeases`). */
  lastSweepAt = 0;

  /** Drops every cached candidate answer: a task was created, started, resumed or reopened. */
  tasksChanged(): void {
    this.generation++;
  }
}
