// A chunk's CPU time and its CPU share inside the chunk (docs/architecture.md, "The sandbox",
// "CPU time and the CPU share"). `cpuMs` is the chunk's wall time less the time its worker sat
// idle waiting on the sandbox's own timers or on `ctx` calls: an idle stretch starts when the
// task that set a wait has ended (a MessageChannel probe arrives) and ends when any of those
// waits calls back into work code. While a tracked operation (WebAssembly, crypto.subtle,
// WebGPU) is unsettled nothing counts as idle: its continuation would run unseen.
//
// At a share under 100 % the worker rests inside those waits: `ctx.yield()`, an awaited
// `ctx.progress()` and the sandbox's setTimeout resolve no sooner than the rest the chunk owes
// (its CPU time since the last rest times 100 / share − 1, less the idle time since). A chunk
// rests inside itself only while its wall time stays under half its timeout; what it still
// owes at the end, the frame rests after it.

import { isFiniteNumber, max } from "./intrinsics.ts";

export interface Pacer {
  /** A chunk starts: `restFactor` is 100 / share − 1, `restUntilMs` its wall time past which it no longer rests. */
  begin(restFactor: number, restUntilMs: number): void;
  /** The chunk ended: its CPU time in ms. */
  end(): number;
  /** A wait calls back into work code (a timer fired, a ctx wait resolved). */
  enter(): void;
  /** Ms the chunk should rest now (0 at a full share); settles what it owed so far. */
  owed(): number;
  /** Ms of CPU the running chunk used so far. */
  cpuMs(): number;
}

export interface PacerOptions {
  now: () => number;
  /** Waits set now that call back into work code (timers, intervals, ctx waits). */
  waits: () => number;
  /** Tracked operations unsettled. */
  operations: () => number;
  Channel: typeof MessageChannel;
}

export function createPacer({ now, waits, operations, Channel }: PacerOptions): Pacer {
  let running = false;
  let started = 0;
  let idleMs = 0;
  let idleSince: number | undefined;
  let factor = 0;
  let restUntil = 0;
  // What was settled at the last rest point.
  let debt = 0;
  let markCpu = 0;
  let markIdle = 0;
  let armed = false;
  const probe = new Channel();
  probe.port1.onmessage = () => {
    armed = false;
    if (running && idleSince === undefined && waits() > 0 && operations() === 0) idleSince = now();
  };
  const arm = (): void => {
    if (armed || !running) return;
    armed = true;
    probe.port2.postMessage(null);
  };
  const idleNow = (): number => idleMs + (idleSince === undefined ? 0 : now() - idleSince);
  const cpuMs = (): number => max(0, now() - started - idleNow());
  return {
    begin(restFactor, restUntilMs) {
      running = true;
      started = now();
      idleMs = 0;
      idleSince = undefined;
      factor = restFactor > 0 && isFiniteNumber(restFactor) ? restFactor : 0;
      restUntil = restUntilMs;
      debt = 0;
      markCpu = 0;
      markIdle = 0;
    },
    end() {
      const cpu = cpuMs();
      running = false;
      idleSince = undefined;
      return cpu;
    },
    enter() {
      if (!running) return;
      if (idleSince !== undefined) {
        idleMs += now() - idleSince;
        idleSince = undefined;
      }
      // Work code runs again: once this task ends, the thread idles if waits remain.
      arm();
    },
    owed() {
      if (!running) return 0;
      // Called from work code about to wait: the wait starts when this task ends.
      arm();
      if (factor === 0) return 0;
      const cpu = cpuMs();
      const idle = idleNow();
      debt = max(0, debt + (cpu - markCpu) * factor - (idle - markIdle));
      markCpu = cpu;
      markIdle = idle;
      if (now() - started + debt > restUntil) return 0;
      return debt;
    },
    cpuMs,
  };
}
