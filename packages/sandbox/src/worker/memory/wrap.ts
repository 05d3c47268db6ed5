// How the memory budget stands in for the realm's allocators (docs/architecture.md, "The
// sandbox", item 5), and the built-in getters it reads sizes with. Everything here is taken
// when the bootstrap loads, before work code can replace a prototype's method or getter; the
// checks on the hot path throw nothing for the objects they expect (an exception per
// allocation made `new ArrayBuffer(64)` ~8× slower than in a plain worker).

import { apply, isFiniteNumber, max, toNumber, trunc } from "../intrinsics.ts";

export type AnyFunction = (...args: never[]) => unknown;
export type Constructor = new (...args: never[]) => object;

/**
 * Makes `Wrapped` stand in for `Original` everywhere work code could find the original: the
 * global (the caller installs it), `prototype.constructor` (so `x.constructor` and the engine's
 * species lookups, which `slice` and `map` use, reach it too) and subclassing. `Wrapped` must be
 * a plain `function` (a method cannot be called with `new`).
 */
export function standIn(Original: Constructor, Wrapped: Constructor): Constructor {
  // Redefining a function's `name` or `length` turns its properties into a dictionary, and V8
  // then folds neither `x instanceof Uint8Array` nor the stand-in's `prototype` (Node, 10M
  // `instanceof` of the budget's Uint8Array: 220 ms, 29 with the engine's): the hot stand-ins
  // are made with the right ones, and keep fast properties.
  if (Wrapped.name !== Original.name) Object.defineProperty(Wrapped, "name", { value: Original.name });
  Object.setPrototypeOf(Wrapped, Object.getPrototypeOf(Original));
  for (const key of Reflect.ownKeys(Original)) {
    if (key === "prototype" || key === "length" || key === "name") continue;
    Object.defineProperty(Wrapped, key, Object.getOwnPropertyDescriptor(Original, key)!);
  }
  if (Wrapped.length !== Original.length) Object.defineProperty(Wrapped, "length", { value: Original.length });
  // Assigned, and so left writable (the engine's own is not): with `writable: false` V8 no longer
  // folds `x instanceof Uint8Array` to a prototype-chain check (Node, 10M: 19 → 155 ms), and
  // noble-hashes asks that of every input. Reassigning it changes only work code's own
  // `instanceof` answers and subclasses: the stand-in constructs with the engine's prototype.
  (Wrapped as { prototype: unknown }).prototype = Original.prototype;
  Object.defineProperty(Original.prototype, "constructor", { value: Wrapped, writable: true, configurable: true, enumerable: false });
  return Wrapped;
}

export function wrapMethod(owner: Record<string, unknown>, name: string, make: (original: unknown) => AnyFunction): void {
  const original = owner[name];
  const wrapped = make(original);
  Object.defineProperty(wrapped, "name", { value: name });
  Object.defineProperty(owner, name, { value: wrapped, writable: true, configurable: true, enumerable: false });
}

/** `fn` as a plain function of (this, ...args): immune to work code replacing Function.prototype.call later. */
export const uncurry = <T extends AnyFunction>(fn: T): ((self: unknown, ...args: unknown[]) => ReturnType<T>) =>
  Function.prototype.call.bind(fn) as unknown as (self: unknown, ...args: unknown[]) => ReturnType<T>;

const getter = (proto: object, name: string): AnyFunction => Object.getOwnPropertyDescriptor(proto, name)!.get! as AnyFunction;
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const SharedBuffer = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;

/** A typed array's byte length (throws for anything else). */
export const typedArrayByteLength = uncurry(getter(typedArrayProto, "byteLength")) as (view: unknown) => number;
/** A typed array's length in elements (throws for anything else, a DataView included). */
export const typedArrayLength = uncurry(getter(typedArrayProto, "length")) as (view: unknown) => number;
/** An ArrayBuffer's byte length (throws for anything else). */
const bufferByteLength = uncurry(getter(ArrayBuffer.prototype, "byteLength")) as (buffer: unknown) => number;
const sharedByteLength = SharedBuffer ? (uncurry(getter(SharedBuffer.prototype, "byteLength")) as (buffer: unknown) => number) : undefined;
const maxByteLengthGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "maxByteLength")?.get;
/** A typed array's buffer (throws for anything else). For a small on-heap typed array this moves its bytes off the heap. */
export const viewBuffer = uncurry(getter(typedArrayProto, "buffer")) as (view: unknown) => ArrayBuffer;
/** A typed array's byte offset (throws for anything else). */
export const typedArrayByteOffset = uncurry(getter(typedArrayProto, "byteOffset")) as (view: unknown) => number;
const dataViewBuffer = uncurry(getter(DataView.prototype, "buffer")) as (view: unknown) => ArrayBuffer;
const dataViewByteLength = uncurry(getter(DataView.prototype, "byteLength")) as (view: unknown) => number;
export const isView = ArrayBuffer.isView;
export const isArray = Array.isArray;

/** The byte length of an ArrayBuffer or SharedArrayBuffer, or -1 for anything else (no exception for a buffer). */
export function anyBufferByteLength(value: unknown): number {
  try {
    return bufferByteLength(value);
  } catch {
    if (!sharedByteLength) return -1;
    try {
      return sharedByteLength(value);
    } catch {
      return -1;
    }
  }
}

/** True only for a real ArrayBuffer or SharedArrayBuffer (never a Proxy or a look-alike). */
export const isAnyBuffer = (value: unknown): boolean => typeof value === "object" && value !== null && anyBufferByteLength(value) >= 0;

/** What a buffer may come to hold: its maximum if resizable (growable), else its length. */
export function bufferExtent(buffer: object): number {
  const length = anyBufferByteLength(buffer);
  if (!maxByteLengthGetter) return length;
  try {
    const limit = apply(maxByteLengthGetter, buffer, []) as number;
    return max(limit, length);
  } catch {
    return length;
  }
}

/** A view's byte length (typed array or DataView). */
export function viewByteLength(view: ArrayBufferView): number {
  try {
    return typedArrayByteLength(view);
  } catch {
    return dataViewByteLength(view);
  }
}

/** A view's buffer. For a small on-heap typed array this moves its bytes off the heap: only when counted. */
export function bufferOfView(view: ArrayBufferView): ArrayBuffer {
  try {
    return viewBuffer(view);
  } catch {
    return dataViewBuffer(view);
  }
}

/** ToIndex, without calling work code (objects are never passed here). */
export function toSize(value: unknown): number {
  if (value === undefined || (typeof value === "object" && value !== null) || typeof value === "function") return 0;
  try {
    const number = trunc(toNumber(value));
    return isFiniteNumber(number) && number > 0 ? number : 0;
  } catch {
    return 0;
  }
}
