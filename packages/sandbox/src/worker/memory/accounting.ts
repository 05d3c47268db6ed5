// What the memory budget's families (buffers.ts, typed-arrays.ts, copies.ts, wasm.ts) share
// with budget.ts, which installs them: apart, so that no family imports budget.ts back.

import type { PendingWork } from "../pending-work.ts";

/**
 * Allocations at least this large are checked before they happen and counted exactly (a
 * FinalizationRegistry entry each). Smaller ones are sampled: a crypto-random countdown of bytes
 * (exponential, mean SMALL, as heap profilers sample) is decreased by each; the one that takes it
 * to zero counts for SMALL bytes and a new countdown is drawn. The expected count is the bytes
 * allocated; work code cannot tell which allocation counts; and the others cost one subtraction.
 */
export const SMALL = 64 * 1024;

/** What each family's stand-ins share. */
export interface Accounting {
  readonly budgetBytes: number;
  /** Bytes of small allocations left before the next sample; -Infinity once over budget, so every allocation takes the slow path and is refused. */
  readonly sampler: { untilSample: number };
  readonly pending: PendingWork;
  exceeded(): string | null;
  /** Marks the worker over budget; the error to throw. */
  over(message: string): RangeError;
  /** Throws (and marks the worker over budget) unless `bytes` more fit. */
  check(bytes: number): void;
  /** Checks a size known before allocating, so an allocation over the budget never happens. */
  precheck(bytes: number): void;
  /** Counts `owner` (the object whose collection frees the bytes) as holding `bytes`: exactly when large, by sampling when small. */
  count(owner: object, bytes: number): void;
  /** Counts a view the engine made (a copy): by its buffer when large, by itself when small. */
  countView(view: ArrayBufferView): void;
  /** Counts a buffer (or copy) made by the platform at what it may come to hold. */
  countBuffer(buffer: object): void;
  /** A fast path's countdown ran out: counts `owner` for the samples drawn. */
  sampled(owner: object): void;
  /** Counts `bytes` exactly, for memories that cannot be measured. */
  countExact(owner: object, bytes: number): void;
  /** Measures a WebAssembly memory (it grows in place) whenever the total is checked. */
  trackMemory(memory: WebAssembly.Memory): void;
  isTrackedMemory(memory: unknown): boolean;
  replaceGlobal(name: string, value: unknown): void;
}
