import { type Db, type ProcessState, processStateOf } from "../db.ts";
import type { Candidate } from "./lease-types.ts";

/** What a volunteer or source holds as far as one process knows (`DispatchCache.heldEstimate`). */
export type HeldEstimate = { known: number; reserved: number };

/** One candidate filter's answer: the running tasks it may be served, in turn order, as of `at`. */
export type CachedCandidates = { at: number; generation: number; tasks: Candidate[] };

/**
 * What this process keeps about one open database to spare the lease path round trips
 * (docs/architecture.md, Dispatch): each volunteer filter's candidate tasks for 100 ms, when
 * it last moved each creator back in the turn order, when it last swept expired leases. Made
 * with the database's handle (`DbHandle.dispatchCache`, `dispatchCacheOf(db)`), so two
 * databases in one process share nothing. A transaction has none of its own: it gets an empty one.
 */
export class DispatchCache {
  /** Bumped when a task is created, started, resumed or reopened: answers from before are stale. */
  generation = 0;
  /** Each filter's last answer (candidates.ts). */
  readonly candidates = new Map<string, CachedCandidates>();
  /** Candidate queries under way: requests that find an answer expired together share one. */
  readonly candidateQueries = new Map<string, { generation: number; startedAt: number; tasks: Promise<Candidate[]> }>();
  /** When each creator was last moved to the back of the turn order from here (lease.ts). */
  readonly markedAt = new Map<string, number>();
  /**
   * Replicated tasks whose extra copies a lease here last looked for and found none, and when
   * (lease.ts): the next looks wait 100 ms while fresh chunks are left. Results submitted here
   * for a task, and any release or expiry here, forget it (copies may be wanted now).
   */
  readonly noCopiesAt = new Map<string, number>();
  /** When each volunteer's beat last carried progress or checkpoints here (heartbeat.ts, `liveReportAllowed`). */
  readonly liveReportedAt = new Map<string, number>();
  /** When a lease request last swept expired leases (`sweepExpiredLeases`). */
  lastSweepAt = 0;
  /** Parties (a volunteer, or an anonymous source) by when they last asked for work here, oldest first (lease.ts, a task's share). */
  readonly askedAt = new Map<string, number>();
  private askedPrunedAt = 0;
  /** What each volunteer and anonymous source holds, as far as this process knows (lease.ts). */
  private readonly held = new Map<string, HeldEstimate>();
  /** Each volunteer's lease requests in this process, one at a time (lease.ts, `oneAtATime`). */
  private readonly leasing = new Map<string, { tail: Promise<unknown>; queued: number }>();

  /**
   * Notes that `party` asks for work now; returns how many other parties asked here within
   * `windowMs` (those a task's chunks are shared among).
   */
  othersAsking(party: string, windowMs: number, now = Date.now()): number {
    this.askedAt.delete(party);
    this.askedAt.set(party, now);
    if (now - this.askedPrunedAt > 1000) {
      this.askedPrunedAt = now;
      for (const [id, at] of this.askedAt) {
        if (at >= now - windowMs) break;
        this.askedAt.delete(id);
      }
    }
    return this.askedAt.size - 1;
  }

  /**
   * What `key` (a volunteer, or an anonymous source) holds as far as this process knows: chunks
   * at its last read from the database plus those granted here since (`known`: at least what it
   * holds, as reports and expiries only lower it), and those requests under way here may take
   * (`reserved`). Entries with nothing reserved are dropped past 50,000 keys (read again on use).
   */
  heldEstimate(key: string): HeldEstimate {
    let entry = this.held.get(key);
    if (!entry) {
      if (this.held.size >= 50_000) for (const [k, e] of this.held) if (e.reserved === 0) this.held.delete(k);
      this.held.set(key, (entry = { known: Number.POSITIVE_INFINITY, reserved: 0 }));
    }
    return entry;
  }

  /**
   * Runs a volunteer's lease requests one after another, so that each reads what the one
   * before leased; with `maxQueued` already running or waiting, runs nothing (null).
   */
  oneAtATime<T>(volunteerId: string, maxQueued: number, run: () => Promise<T>): Promise<T> | null {
    let state = this.leasing.get(volunteerId);
    if (state && state.queued >= maxQueued) return null;
    if (!state) this.leasing.set(volunteerId, (state = { tail: Promise.resolve(), queued: 0 }));
    const entry = state;
    entry.queued++;
    const turn = entry.tail.then(run);
    entry.tail = turn
      .catch(() => {})
      .then(() => {
        if (--entry.queued === 0 && this.leasing.get(volunteerId) === entry) this.leasing.delete(volunteerId);
      });
    return turn;
  }

  /** Drops every cached candidate answer: a task was created, started, resumed or reopened. */
  tasksChanged(): void {
    this.generation++;
  }
}

/** Each database's cache, by what its handle gave it in this process (`processStateOf`). */
const caches = new WeakMap<ProcessState, DispatchCache>();

/** The dispatch cache of the database `db` was given a handle as; an empty one, kept nowhere, for a transaction. */
export function dispatchCacheOf(db: Db): DispatchCache {
  const state = processStateOf(db);
  if (!state) return new DispatchCache();
  let cache = caches.get(state);
  if (!cache) caches.set(state, (cache = new DispatchCache()));
  return cache;
}
