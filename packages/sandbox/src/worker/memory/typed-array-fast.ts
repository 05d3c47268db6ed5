// `subarray`, `slice` and `map` of each typed array, written in JS for the common case
// (docs/architecture.md, "The sandbox", item 5). The memory budget stands in for
// `X.prototype.constructor`, which turns off V8's typed-array species protector: every built-in
// `subarray` and `slice` then looks up `constructor` and `Symbol.species` generically and calls
// the stand-in through `new` (Node, 1M calls: subarray 0.028 → 0.059 µs, slice 0.038 → 0.072).
// Here, when `this.constructor` is the type's own stand-in (an inline-cached load in JS), the
// arguments are plain numbers and the buffer is of fixed length, the view or copy is made
// directly: what the species lookup would have made, at the protector-intact speed (0.027 and
// 0.036 µs). Anything else (subclasses, an own `constructor`, an array of another type given
// this type's prototype, objects as indexes, resizable buffers, empty or detached arrays) goes
// to the built-in, as before. `map` likewise, for an array of this very type and a function
// (arrays of 8 and 16 elements, 500k maps each: 0.77x a plain worker through the species lookup,
// 1.8-2.0x here): the constructor is read once, after the checks that have no side effect, as
// the built-in reads it once; then each element is read, mapped and stored in order. `filter`
// reads the constructor after its callbacks, and stays with the built-in.

import { apply, max, min, trunc } from "../intrinsics.ts";
import { type AnyFunction, typedArrayByteLength, typedArrayByteOffset, typedArrayLength, uncurry, viewBuffer } from "./wrap.ts";

type View = ArrayBufferView & { [index: number]: number | bigint };

/** The [[TypedArrayName]] of a real typed array (whatever its prototype now is), else undefined: the engine's getter. */
const typeOf = uncurry(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, Symbol.toStringTag)!.get as AnyFunction) as (value: unknown) => string | undefined;
const setFrom = uncurry((Object.getPrototypeOf(Uint8Array.prototype) as { set: AnyFunction }).set) as (target: unknown, source: unknown) => void;
const resizable = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "resizable")?.get;

/** True for a buffer that cannot change length (a SharedArrayBuffer, which may grow, is not). */
function fixedLength(buffer: ArrayBuffer): boolean {
  if (!resizable) return true;
  try {
    return !apply(resizable, buffer, []);
  } catch {
    return false;
  }
}

/** ToIntegerOrInfinity of a number, then relative to `length` (negative from the end), clamped to [0, length]. */
function relative(value: number | undefined, length: number, fallback: number): number {
  if (value === undefined) return fallback;
  const index = trunc(value) || 0;
  return index < 0 ? max(length + index, 0) : min(index, length);
}

export interface FastCopies {
  /** The type's name, e.g. "Uint8Array". */
  name: string;
  prototype: object;
  /** The type's stand-in: `this.constructor` must be it, or the built-in decides. */
  standIn: unknown;
  Made: new (buffer: ArrayBufferLike | number, byteOffset?: number, length?: number) => View;
  perElement: number;
  /** Integer elements copy exactly one by one (a float NaN's bits might not). */
  integer: boolean;
  /** A new array of `length` elements, counted by the budget. */
  make(length: number): View;
  /** The built-ins (the budget's counting `slice` and `map` for the other cases). */
  subarray: AnyFunction;
  slice: AnyFunction;
  map: AnyFunction;
}

/** Copies up to this many integer elements one by one (no buffer is made for a small on-heap array). */
const BY_ELEMENT = 64;

export function installFastCopies({ name, prototype, standIn, Made, perElement, integer, make, subarray, slice, map }: FastCopies): void {
  const builtInSubarray = uncurry(subarray);
  const builtInSlice = uncurry(slice);
  const builtInMap = uncurry(map);
  const define = (name: string, value: AnyFunction): void => {
    Object.defineProperty(value, "name", { value: name });
    Object.defineProperty(prototype, name, { value, writable: true, configurable: true, enumerable: false });
  };
  define("subarray", function (this: View, begin?: unknown, end?: unknown) {
    if (this.constructor === standIn && typeof begin === "number" && (end === undefined || typeof end === "number")) {
      const length = typedArrayLength(this);
      const buffer = viewBuffer(this);
      // The element size must be this type's: another type's array given this prototype steps by its own.
      if (length > 0 && typedArrayByteLength(this) === length * perElement && fixedLength(buffer)) {
        const start = relative(begin, length, 0);
        const final = relative(end, length, length);
        return new Made(buffer, typedArrayByteOffset(this) + start * perElement, final > start ? final - start : 0);
      }
    }
    return builtInSubarray(this, begin, end);
  });
  define("slice", function (this: View, begin?: unknown, end?: unknown) {
    if (this.constructor === standIn && (begin === undefined || typeof begin === "number") && (end === undefined || typeof end === "number")) {
      const length = typedArrayLength(this);
      const start = relative(begin, length, 0);
      const count = max(relative(end, length, length) - start, 0);
      if (length > 0 && integer && count <= BY_ELEMENT) {
        const copy = make(count);
        for (let i = 0; i < count; i++) copy[i] = this[start + i]!;
        return copy;
      }
      // Copying bytes is right only between arrays of one type (by element, the engine converts).
      if (count > BY_ELEMENT && typeOf(this) === name) {
        const buffer = viewBuffer(this);
        if (fixedLength(buffer)) {
          const copy = make(count);
          setFrom(copy, new Made(buffer, typedArrayByteOffset(this) + start * perElement, count));
          return copy;
        }
      }
    }
    return builtInSlice(this, begin, end);
  });
  define("map", function (this: View, callback?: unknown, thisArg?: unknown) {
    // Its own type (not another's given this prototype, nor anything else), in bounds and not
    // empty (the built-in throws for a detached or out-of-bounds one), with a function to call.
    if (typeOf(this) === name && typeof callback === "function") {
      const length = typedArrayLength(this);
      if (length > 0 && this.constructor === standIn) {
        const copy = make(length);
        for (let i = 0; i < length; i++) copy[i] = apply(callback as AnyFunction, thisArg, [this[i], i, this] as never[]) as number | bigint;
        return copy;
      }
    }
    return builtInMap(this, callback, thisArg);
  });
}
