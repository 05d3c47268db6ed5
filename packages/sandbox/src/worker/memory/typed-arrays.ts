// The memory budget's typed arrays (docs/architecture.md, "The sandbox", item 5): their
// constructors (the species constructor too, so `slice`, `map` and `filter` copies count), and
// the methods that copy through the engine's own constructor instead.

import { apply, arrayFrom, construct, typedArrayNames } from "../intrinsics.ts";
import { type Accounting, SMALL } from "./accounting.ts";
import { type FastCopies, installFastCopies } from "./typed-array-fast.ts";
import { type AnyFunction, anyBufferByteLength, type Constructor, isArray, isView, standIn, toSize, typedArrayByteLength, typedArrayLength, viewByteLength, wrapMethod } from "./wrap.ts";

/** A typed array's length, or -1 for anything else (a DataView included). */
function lengthOfTyped(value: object): number {
  try {
    return typedArrayLength(value);
  } catch {
    return -1;
  }
}

export function installTypedArrays(accounting: Accounting): void {
  const { sampler, countView } = accounting;
  // What the stand-ins counted, for the copying methods below: the last small array (holding it
  // keeps at most SMALL bytes alive), and every large one. The last small one is kept only while
  // one of those methods runs (`copying`): kept always, each array stored in this closure (in the
  // old generation) cost V8 a write barrier's slow path, 1.5M of them in the typed-array kernel.
  let lastSmall: object | undefined;
  let copying = 0;
  const large = new WeakSet<object>();
  const isLarge = WeakSet.prototype.has;
  const addLarge = WeakSet.prototype.add;

  const typedArrays = Object.getPrototypeOf(Uint8Array.prototype) as Record<string, unknown>;
  // These copy through the species constructor (`x.constructor[Symbol.species]`, the stand-ins
  // below), but through the engine's own constructor when work code makes either undefined
  // (`x.constructor = undefined`): a copy no stand-in counted is counted here, right after it is
  // made (it is no larger than the array it copies, which was counted). A small copy a stand-in
  // made before a callback made another (`map`) is counted twice, as a sample.
  for (const method of ["slice", "map", "filter"]) {
    wrapMethod(
      typedArrays,
      method,
      (original) =>
        function (this: ArrayBufferView, a?: unknown, b?: unknown) {
          let copy: ArrayBufferView;
          copying += 1;
          try {
            copy = apply(original as AnyFunction, this, [a, b] as never[]) as ArrayBufferView;
          } finally {
            copying -= 1;
          }
          if (copy !== lastSmall && !(apply(isLarge, large, [copy]) as boolean)) countView(copy);
          return copy;
        },
    );
  }

  // These make a new array of the same type through the engine's own constructor, not `constructor`.
  for (const method of ["toReversed", "toSorted", "with"]) {
    if (typeof typedArrays[method] !== "function") continue;
    wrapMethod(
      typedArrays,
      method,
      (original) =>
        function (this: ArrayBufferView, ...args: unknown[]) {
          accounting.precheck(typedArrayByteLength(this));
          const copy = apply(original as AnyFunction, this, args as never[]) as ArrayBufferView;
          countView(copy);
          return copy;
        },
    );
  }

  const builtInSubarray = typedArrays.subarray as AnyFunction;
  const countingSlice = typedArrays.slice as AnyFunction;
  const countingMap = typedArrays.map as AnyFunction;
  const species = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array) as object, Symbol.species)!;
  for (const name of typedArrayNames) {
    const Original = (globalThis as unknown as Record<string, unknown>)[name] as (Constructor & { BYTES_PER_ELEMENT: number }) | undefined;
    if (!Original) continue;
    const Made = Original as unknown as new (a?: unknown, b?: unknown, c?: unknown) => ArrayBufferView;
    const perElement = Original.BYTES_PER_ELEMENT;
    /** Anything the fast path does not take: checked before, counted after. */
    const general = (newTarget: unknown, args: unknown[]): ArrayBufferView => {
      if (newTarget === undefined) throw new TypeError(`Constructor ${name} requires 'new'`);
      const first = args[0];
      let checked = args;
      let view = false;
      if (typeof first !== "object" || first === null) {
        accounting.precheck(toSize(first) * perElement);
      } else if (anyBufferByteLength(first) >= 0) {
        view = true; // a view of memory already counted
      } else {
        const length = isView(first) ? lengthOfTyped(first) : -1;
        if (length >= 0) accounting.precheck(length * perElement);
        else {
          // An array-like or iterable: read once here, so its length cannot change between the check and the copy.
          const items = arrayFrom(first as ArrayLike<unknown>);
          accounting.precheck(items.length * perElement);
          checked = [items];
        }
      }
      const made = construct(Made, checked, newTarget === Wrapped ? Made : (newTarget as Constructor)) as ArrayBufferView;
      if (!view) {
        countView(made);
        if (viewByteLength(made) >= SMALL) apply(addLarge, large, [made]);
        else if (copying > 0) lastSmall = made;
      }
      return made;
    };
    // The common cases cost a subtraction (budget.ts, SMALL): `new X(n)`, `new X(typedArray)`,
    // and a view of a buffer (what `subarray` makes through the species constructor).
    // Named and of length 3 as made, as the engine's are: see standIn.
    const Wrapped = {
      [name]: function (this: unknown, a?: unknown, b?: unknown, c?: unknown) {
        if ((new.target as unknown) === Wrapped) {
          let bytes = -1;
          if (typeof a === "number") bytes = a * perElement;
          else if (typeof a === "object" && a !== null && !isArray(a)) {
            if (isView(a)) bytes = lengthOfTyped(a) * perElement;
            else if (anyBufferByteLength(a) >= 0) return new Made(a, b, c);
          }
          if (bytes >= 0 && bytes < SMALL) {
            const view = new Made(a);
            if ((sampler.untilSample -= bytes) <= 0) accounting.sampled(view);
            if (copying > 0) lastSmall = view;
            return view;
          }
        }
        // Not `arguments` or a rest array: spreading either runs the array iterator, which work code may have replaced.
        return general(new.target, [a, b, c]);
      },
    }[name] as unknown as Constructor;
    for (const method of ["fromBase64", "fromHex"]) {
      if (typeof (Original as unknown as Record<string, unknown>)[method] !== "function") continue;
      wrapMethod(
        Wrapped as unknown as Record<string, unknown>,
        method,
        (original) =>
          function (this: unknown, ...args: unknown[]) {
            const view = apply(original as AnyFunction, Original, args as never[]) as ArrayBufferView;
            countView(view);
            return view;
          },
      );
    }
    accounting.replaceGlobal(name, standIn(Original, Wrapped));
    // The engine's own getter, but fixed: the fast `slice` and `subarray` make what it answers.
    Object.defineProperty(Wrapped, Symbol.species, { get: species.get, configurable: false, enumerable: false });
    /** A new array of `length` elements, counted as the stand-in counts `new X(length)`. */
    const make = (length: number): ArrayBufferView => {
      const bytes = length * perElement;
      if (bytes >= SMALL) return general(Wrapped, [length]);
      const view = new Made(length);
      if ((sampler.untilSample -= bytes) <= 0) accounting.sampled(view);
      if (copying > 0) lastSmall = view;
      return view;
    };
    installFastCopies({
      name,
      prototype: Original.prototype,
      standIn: Wrapped,
      Made: Made as FastCopies["Made"],
      perElement,
      integer: !name.startsWith("Float"),
      make: make as FastCopies["make"],
      subarray: builtInSubarray,
      slice: countingSlice,
      map: countingMap,
    });
  }
}
