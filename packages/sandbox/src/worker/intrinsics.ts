// Built-ins the worker's bootstrap calls after work code has loaded, taken when the bootstrap
// starts. Work code shares the realm and may replace Function.prototype.call, Math.max,
// Map.prototype.size and the like; the checks that keep it in bounds (memory/,
// pending-work.ts) call only these, and keep their state in numbers and index-addressed arrays.
export const { apply, construct } = Reflect;
export const { log, max, min, trunc } = Math;
export const toNumber = Number;
export const isFiniteNumber = Number.isFinite;
export const objectValues = Object.values;
export const arrayFrom = Array.from;
export const registerFinalizer = FinalizationRegistry.prototype.register;
export const derefWeakRef = WeakRef.prototype.deref;
export const promiseThen = Promise.prototype.then;

/** The typed-array constructors: work code gets them all, each counted by the memory budget. */
export const typedArrayNames = [
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float16Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
] as const;
