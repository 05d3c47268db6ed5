// The memory budget's buffers (docs/architecture.md, "The sandbox", item 5): ArrayBuffer and
// SharedArrayBuffer (a resizable or growable one counts at its maximum), `slice`, and
// `transfer`, which makes a new buffer of any size from an old one.

import { apply, construct, max } from "../intrinsics.ts";
import { type Accounting, SMALL } from "./accounting.ts";
import { type AnyFunction, anyBufferByteLength, bufferExtent, type Constructor, standIn, toSize, wrapMethod } from "./wrap.ts";

export function installBuffers(accounting: Accounting): void {
  const { sampler } = accounting;
  // What the stand-ins counted, for `slice` below: the last small buffer (holding it keeps at
  // most SMALL bytes alive), kept only while `slice` runs (a write barrier per buffer otherwise:
  // typed-arrays.ts), and every large one.
  let lastSmall: object | undefined;
  let copying = 0;
  const large = new WeakSet<object>();
  const isLarge = WeakSet.prototype.has;
  const addLarge = WeakSet.prototype.add;
  const SharedBuffer = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;
  for (const Original of [ArrayBuffer, SharedBuffer]) {
    if (!Original) continue;
    const name = Original.name as "ArrayBuffer" | "SharedArrayBuffer";
    const Made = Original as unknown as new (length: number, options?: { maxByteLength: number }) => ArrayBuffer;
    /** Anything but `new X(small number)`: checked before, counted after. */
    const general = (newTarget: unknown, length: unknown, options: unknown): ArrayBuffer => {
      if (newTarget === undefined) throw new TypeError(`Constructor ${name} requires 'new'`);
      // Read once: a getter must not answer the engine differently than it answered the check.
      const limit = typeof options === "object" && options !== null ? toSize((options as { maxByteLength?: unknown }).maxByteLength) : 0;
      accounting.precheck(max(toSize(length), limit));
      const made = construct(Made, limit > 0 ? [length, { maxByteLength: limit }] : [length], newTarget === Wrapped ? Made : (newTarget as Constructor)) as ArrayBuffer;
      accounting.countBuffer(made);
      if (bufferExtent(made) >= SMALL) apply(addLarge, large, [made]);
      else if (copying > 0) lastSmall = made;
      return made;
    };
    // The common case costs a subtraction (budget.ts, SMALL): no exception, no array, no registry.
    // Named and of length 1 (`options` has a default) as made, as the engine's is: see standIn.
    const Wrapped = {
      [name]: function (this: unknown, length?: unknown, options: unknown = undefined) {
        if ((new.target as unknown) === Wrapped && typeof length === "number" && options === undefined && length >= 0 && length < SMALL) {
          const made = new Made(length);
          if ((sampler.untilSample -= length) <= 0) accounting.sampled(made);
          if (copying > 0) lastSmall = made;
          return made;
        }
        return general(new.target, length, options);
      },
    }[name] as unknown as Constructor;
    accounting.replaceGlobal(name, standIn(Original as unknown as Constructor, Wrapped));
    // `slice` copies through the species constructor (the stand-in), but through the engine's
    // own when work code makes it undefined (`buffer.constructor = undefined`): a copy no
    // stand-in counted is counted here, right after it is made (no larger than its source).
    wrapMethod(
      Original.prototype as unknown as Record<string, unknown>,
      "slice",
      (original) =>
        function (this: ArrayBuffer, start?: unknown, end?: unknown) {
          let copy: ArrayBuffer;
          copying += 1;
          try {
            copy = apply(original as AnyFunction, this, [start, end] as never[]) as ArrayBuffer;
          } finally {
            copying -= 1;
          }
          if (copy !== lastSmall && !(apply(isLarge, large, [copy]) as boolean)) accounting.countBuffer(copy);
          return copy;
        },
    );
  }

  for (const method of ["transfer", "transferToFixedLength"] as const) {
    wrapMethod(
      ArrayBuffer.prototype as unknown as Record<string, unknown>,
      method,
      (original) =>
        function (this: ArrayBuffer, ...args: unknown[]) {
          const length = args[0] === undefined ? anyBufferByteLength(this) : toSize(args[0]);
          accounting.precheck(length);
          const moved = apply(original as AnyFunction, this, [length]) as ArrayBuffer;
          accounting.countBuffer(moved);
          return moved;
        },
    );
  }
}
