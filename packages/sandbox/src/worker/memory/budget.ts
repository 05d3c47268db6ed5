// A worker's memory budget (docs/architecture.md, "The sandbox", item 5). What work code can
// allocate outside the JS heap (buffers, typed arrays, copies the platform makes, WebAssembly
// memories: the 4 GiB and 6 GiB of the attack) goes through the stand-ins of this folder, one
// file per family. One allocation over the budget is refused before it happens; large ones
// (≥ 64 KiB) are counted exactly; small ones cost a subtraction, and are counted by sampling.
// What the JS heap holds (arrays, strings, objects) is bounded by the frame process's heap
// limit: a blow-up kills the frame (host.ts).

import type { WasmMemoryLimits } from "../../wasm-limits.ts";
import { mib } from "../../wasm-limits.ts";
import { apply, derefWeakRef, isFiniteNumber, log, registerFinalizer } from "../intrinsics.ts";
import type { PendingWork } from "../pending-work.ts";
import { type Accounting, SMALL } from "./accounting.ts";
import { installBuffers } from "./buffers.ts";
import { installPlatformCopies } from "./copies.ts";
import { installStreams } from "./streams.ts";
import { installTypedArrays } from "./typed-arrays.ts";
import { installWasm } from "./wasm.ts";
import { anyBufferByteLength, bufferExtent, bufferOfView, viewByteLength } from "./wrap.ts";

/**
 * Room for garbage above the budget. The count drops only when the garbage collector reports a
 * buffer freed (a FinalizationRegistry callback, which runs between tasks, so never within one
 * synchronous stretch of work), and V8 lets dead buffers sit: in a probe, 8 MiB temporaries made
 * one per task, 8 MiB live at any time, were counted at up to 496 MiB. The single-allocation
 * limit is the budget itself.
 */
const GARBAGE_ALLOWANCE = 512 * 1024 * 1024;
const MAX_VALUE = Number.MAX_VALUE;

export interface MemoryBudget {
  /** Why the worker went over its budget (its chunk then fails as `oom`), or null. */
  readonly exceeded: string | null;
  /** Counts the memories of an instance of the task's own module (instantiated by the bootstrap). */
  countInstance(instance: WebAssembly.Instance, limits: WasmMemoryLimits): void;
  /**
   * The counting constructors and functions, by global name, for scope.ts to install (it
   * removes the originals from every level of the global's prototype chain).
   */
  globals: Record<string, unknown>;
}

/**
 * Replaces the allocating constructors and methods of the worker's realm with counting ones.
 * `random` fills its argument with crypto-random values.
 */
export function installMemoryBudget(budgetBytes: number, pending: PendingWork, random: (into: Uint32Array) => void): MemoryBudget {
  const globals: Record<string, unknown> = {};
  const ceiling = budgetBytes + GARBAGE_ALLOWANCE;
  let counted = 0;
  let exceeded: string | null = null;
  const freed = new FinalizationRegistry<number>((bytes) => void (counted -= bytes));
  const register = (owner: object, bytes: number): void => void apply(registerFinalizer, freed, [owner, bytes]);
  const memories: (WeakRef<WebAssembly.Memory> | undefined)[] = [];
  const knownMemories = new WeakSet<object>();
  const isKnownMemory = WeakSet.prototype.has;
  const addKnownMemory = WeakSet.prototype.add;
  const memoryBuffer = Object.getOwnPropertyDescriptor(WebAssembly.Memory.prototype, "buffer")!.get!;
  const draws = new Uint32Array(256);
  let draw = draws.length;
  /** An exponential gap of mean SMALL bytes, from a crypto-random draw. */
  const gap = (): number => {
    if (draw === draws.length) {
      random(draws);
      draw = 0;
    }
    return -log((draws[draw++]! + 1) / 4294967296) * SMALL;
  };
  const sampler = { untilSample: gap() };

  const over = (message: string): RangeError => {
    exceeded ??= `${message}: over the task's memory budget of ${mib(budgetBytes)}`;
    sampler.untilSample = -Infinity;
    return new RangeError(exceeded);
  };
  const memoryBytes = (): number => {
    let sum = 0;
    for (let i = 0; i < memories.length; i++) {
      const ref = memories[i];
      const memory = ref && (apply(derefWeakRef, ref, []) as WebAssembly.Memory | undefined);
      if (memory) sum += anyBufferByteLength(apply(memoryBuffer, memory, []) as ArrayBuffer);
      else memories[i] = undefined;
    }
    return sum;
  };
  const check = (bytes: number): void => {
    if (exceeded !== null) throw new RangeError(exceeded);
    if (bytes > budgetBytes) throw over(`one allocation of ${mib(bytes)}`);
    const total = counted + bytes + (memories.length > 0 ? memoryBytes() : 0);
    if (total > ceiling)
      throw over(
        `the worker's buffers reached ${mib(total)} (${mib(GARBAGE_ALLOWANCE)} above the budget is left for garbage not yet collected; garbage counts until the chunk lets its event loop run, so a long loop that allocates should \`await ctx.yield()\` now and then)`,
      );
  };
  const countExact = (owner: object, bytes: number): void => {
    check(bytes);
    counted += bytes;
    register(owner, bytes);
  };
  // A sampled allocation is registered by a token that lives exactly as long as it (the value
  // of a WeakMap entry keyed by it): V8 made every allocation about 2× slower while small
  // ArrayBuffers were targets of a FinalizationRegistry (its scavenges slowed down), not while
  // plain objects were.
  const tokens = new WeakMap<object, object>();
  const getToken = WeakMap.prototype.get;
  const setToken = WeakMap.prototype.set;
  const sampled = (owner: object): void => {
    let token = apply(getToken, tokens, [owner]) as object | undefined;
    if (token === undefined) {
      token = {};
      apply(setToken, tokens, [owner, token]);
    }
    while (sampler.untilSample <= 0) {
      countExact(token, SMALL);
      sampler.untilSample += gap();
    }
  };
  const count = (owner: object, bytes: number): void => {
    if (bytes >= SMALL) countExact(owner, bytes);
    else if (bytes > 0 && (sampler.untilSample -= bytes) <= 0) sampled(owner);
  };
  const accounting: Accounting = {
    budgetBytes,
    sampler,
    pending,
    exceeded: () => exceeded,
    over,
    check,
    precheck: (bytes) => {
      if (bytes >= SMALL || exceeded !== null) check(isFiniteNumber(bytes) ? bytes : MAX_VALUE);
    },
    count,
    countView: (view) => {
      const bytes = viewByteLength(view);
      // `.buffer` makes a small on-heap typed array move its bytes off the heap: only when counted.
      if (bytes >= SMALL) count(bufferOfView(view), bytes);
      else if (bytes > 0 && (sampler.untilSample -= bytes) <= 0) sampled(view);
    },
    countBuffer: (buffer) => count(buffer, bufferExtent(buffer)),
    sampled,
    countExact,
    trackMemory: (memory) => {
      if (apply(isKnownMemory, knownMemories, [memory])) return;
      apply(addKnownMemory, knownMemories, [memory]);
      memories[memories.length] = new WeakRef(memory);
    },
    isTrackedMemory: (memory) => typeof memory === "object" && memory !== null && (apply(isKnownMemory, knownMemories, [memory]) as boolean),
    replaceGlobal: (name, value) => void (globals[name] = value),
  };

  installBuffers(accounting);
  installTypedArrays(accounting);
  installPlatformCopies(accounting);
  installStreams(accounting);
  const { countInstance } = installWasm(accounting);
  return {
    get exceeded() {
      return exceeded;
    },
    countInstance,
    globals,
  };
}
