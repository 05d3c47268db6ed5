// Work a chunk leaves scheduled when it returns (docs/architecture.md, "The sandbox"). A worker
// must run nothing between its chunks. Timers and intervals still set when the work function
// returns are cleared at that moment, so none of them ever runs (a `Promise.race` against a
// timeout that is never cleared is common, and harmless once cleared). Asynchronous operations
// still unsettled (WebAssembly compiles, crypto.subtle, WebGPU) cannot be called off: their
// chunk fails and its worker is replaced before their continuations run. Only these routes can
// schedule work in the allow-listed scope; a promise or microtask loop never lets the worker
// reach the task that posts the chunk's outcome, so that chunk ends at its deadline.
import { apply, max, promiseThen, toNumber } from "./intrinsics.ts";

export interface PendingWork {
  /** What work code gets in place of the browser's timer functions. */
  readonly timers: {
    setTimeout: (handler: unknown, ms?: number, ...args: unknown[]) => number;
    setInterval: (handler: unknown, ms?: number, ...args: unknown[]) => number;
    clearTimeout: (id?: number) => void;
    clearInterval: (id?: number) => void;
  };
  /** Counts `promise` as pending until it settles; returns what the caller should get. */
  track<T>(promise: Promise<T>): Promise<T>;
  /**
   * Called when the work function has returned: clears every timer and interval still set,
   * and says how many operations are still unsettled.
   */
  finish(): { cleared: number; unsettled: number };
  /** Timers and intervals set now. */
  waits(): number;
  /** Tracked operations unsettled now. */
  operations(): number;
}

/** How timers meet the pacer (pacer.ts): a timeout waits at least the rest owed; each callback is an entry. */
export interface TimerHooks {
  owed(): number;
  enter(): void;
}

type TimerFunctions = { setTimeout: typeof setTimeout; setInterval: typeof setInterval; clearTimeout: typeof clearTimeout };

/**
 * Runs work code's timer callback; what it throws ends here, as the worker's error listener
 * would have ended it (worker.ts), without the engine reporting an uncaught exception first:
 * with a debugger attached (the CLI volunteer's puppeteer, the tests' Playwright) each report
 * crosses to the browser process, and a flood of them left the frame's replies to the host
 * late enough to be taken for a crash (docs/architecture.md, "The sandbox", item 6).
 */
function runCaught(run: (...args: unknown[]) => void, args: unknown[]): void {
  try {
    apply(run, undefined, args);
  } catch {
    // Work code's own error, in its own timer: the chunk goes on, as in a browser.
  }
}

export function pendingWork(originals: TimerFunctions, hooks: TimerHooks = { owed: () => 0, enter: () => {} }): PendingWork {
  // Counters and a prototype-less record: nothing work code could replace (see intrinsics.ts).
  const live: Record<number, "timer" | "interval"> = Object.create(null) as Record<number, "timer" | "interval">;
  let timers = 0;
  let intervals = 0;
  let operations = 0;
  const callable = (handler: unknown, what: string): ((...args: unknown[]) => void) => {
    // A string would be eval'd: nothing computes that way that a function cannot.
    if (typeof handler !== "function") throw new TypeError(`${what} takes a function`);
    return handler as (...args: unknown[]) => void;
  };
  const forget = (id: number): void => {
    const kind = live[id];
    if (kind === undefined) return;
    delete live[id];
    if (kind === "timer") timers -= 1;
    else intervals -= 1;
  };
  const clear = (id?: number): void => {
    if (typeof id !== "number") return;
    forget(id);
    originals.clearTimeout(id);
  };
  return {
    timers: {
      setTimeout(handler, ms, ...args) {
        const run = callable(handler, "setTimeout");
        const rest = hooks.owed();
        // NaN (no delay given) waits just the rest.
        const wanted = toNumber(ms) || 0;
        const id = originals.setTimeout(
          () => {
            forget(id);
            hooks.enter();
            runCaught(run, args);
          },
          max(wanted, rest),
        ) as unknown as number;
        live[id] = "timer";
        timers += 1;
        return id;
      },
      setInterval(handler, ms, ...args) {
        const run = callable(handler, "setInterval");
        hooks.owed();
        const id = originals.setInterval(() => {
          hooks.enter();
          runCaught(run, args);
        }, ms) as unknown as number;
        live[id] = "interval";
        intervals += 1;
        return id;
      },
      clearTimeout: clear,
      clearInterval: clear,
    },
    track(promise) {
      operations += 1;
      return apply(promiseThen, promise, [
        (value: unknown) => {
          operations -= 1;
          return value;
        },
        (error: unknown) => {
          operations -= 1;
          throw error;
        },
      ]) as typeof promise;
    },
    finish() {
      const cleared = timers + intervals;
      if (cleared > 0) {
        for (const id in live) originals.clearTimeout(toNumber(id));
        for (const id in live) delete live[id];
        timers = 0;
        intervals = 0;
      }
      return { cleared, unsettled: operations };
    },
    waits: () => timers + intervals,
    operations: () => operations,
  };
}
