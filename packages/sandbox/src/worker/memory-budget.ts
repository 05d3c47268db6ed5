// A worker's memory budget (docs/architecture.md, "The sandbox"). What work code can allocate
// outside the JS heap (buffers, typed arrays, WebAssembly memories: the 4 GiB and 6 GiB of the
// attack) is allocated through wrappers installed here, which refuse one allocation over the
// budget and count what the worker holds. What the JS heap holds (arrays, strings, objects) is
// bounded only by the frame process's heap limit: a blow-up kills the frame (host.ts).

import { capWasmMemories, mib, WasmLimitError, WasmMalformedError, type WasmMemoryLimits } from "../wasm-limits.ts";
import { apply, arrayFrom, construct, derefWeakRef, isFiniteNumber, max, objectValues, promiseThen, registerFinalizer, toNumber, trunc, typedArrayNames } from "./intrinsics.ts";
import type { PendingWork } from "./pending-work.ts";

/**
 * Room for garbage above the budget. The count drops only when the garbage collector reports a
 * buffer freed (a FinalizationRegistry callback, which runs between tasks), and V8 lets dead
 * buffers sit: in a probe, 8 MiB temporaries made one per task, 8 MiB live at any time, were
 * counted at up to 496 MiB. The single-allocation limit is the budget itself.
 */
const GARBAGE_ALLOWANCE = 512 * 1024 * 1024;
/**
 * Smaller allocations are counted by sampling: each stands, with probability bytes / SMALL,
 * for SMALL bytes (a crypto-random draw, so work code cannot tell which ones count). A
 * FinalizationRegistry entry per small buffer would cost more than the buffer itself.
 */
const SMALL = 64 * 1024;

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

type AnyFunction = (...args: never[]) => unknown;
type Constructor = new (...args: never[]) => object;

/**
 * Replaces the allocating constructors and methods of the worker's realm with counting ones.
 * `random` fills its argument with crypto-random values.
 */
export function installMemoryBudget(budgetBytes: number, pending: PendingWork, random: (into: Uint32Array) => void): MemoryBudget {
  const globals: Record<string, unknown> = {};
  const replaceGlobal = (name: string, value: unknown): void => void (globals[name] = value);
  const ceiling = budgetBytes + GARBAGE_ALLOWANCE;
  let counted = 0;
  let exceeded: string | null = null;
  const freed = new FinalizationRegistry<number>((bytes) => void (counted -= bytes));
  /** WebAssembly memories, which grow in place: measured when checked, not counted once. */
  const memories: (WeakRef<WebAssembly.Memory> | undefined)[] = [];
  const knownMemories = new WeakSet<object>();
  const isKnownMemory = WeakSet.prototype.has;
  const addKnownMemory = WeakSet.prototype.add;
  const register = (owner: object, bytes: number): void => void apply(registerFinalizer, freed, [owner, bytes]);
  const draws = new Uint32Array(1024);
  let draw = draws.length;

  const over = (message: string): RangeError => {
    exceeded ??= `${message}: over the task's memory budget of ${mib(budgetBytes)}`;
    return new RangeError(exceeded);
  };
  const memoryBytes = (): number => {
    let sum = 0;
    for (let i = 0; i < memories.length; i++) {
      const ref = memories[i];
      const memory = ref && (apply(derefWeakRef, ref, []) as WebAssembly.Memory | undefined);
      if (memory) sum += byteLengthOf(bufferOf(memory));
      else memories[i] = undefined;
    }
    return sum;
  };
  /** Throws (and marks the worker over budget) unless `bytes` more fit. */
  const check = (bytes: number): void => {
    if (exceeded !== null) throw new RangeError(exceeded);
    if (bytes > budgetBytes) throw over(`one allocation of ${mib(bytes)}`);
    const total = counted + bytes + (memories.length > 0 ? memoryBytes() : 0);
    if (total > ceiling) throw over(`the worker's buffers reached ${mib(total)} (${mib(GARBAGE_ALLOWANCE)} above the budget is left for garbage not yet collected)`);
  };
  /** Counts `owner` (the object whose collection frees the bytes) as holding `bytes`. */
  const count = (owner: object, bytes: number): void => {
    if (bytes >= SMALL) {
      check(bytes);
      counted += bytes;
      register(owner, bytes);
      return;
    }
    if (bytes === 0) return;
    if (draw === draws.length) {
      random(draws);
      draw = 0;
    }
    if (draws[draw++]! >= (bytes / SMALL) * 4294967296) return;
    check(SMALL);
    counted += SMALL;
    register(owner, SMALL);
  };
  /** Checks a size known before allocating, so an allocation over the budget never happens. */
  const precheck = (bytes: number): void => {
    if (bytes >= SMALL || exceeded !== null) check(isFiniteNumber(bytes) ? bytes : Number.MAX_VALUE);
  };
  const countView = (view: ArrayBufferView): void => {
    const bytes = byteLengthOf(view);
    // `.buffer` makes a small on-heap typed array move its bytes off the heap: only when counted.
    if (bytes >= SMALL) count(bufferOfView(view), bytes);
    else if (bytes > 0) count(view, bytes);
  };

  // --- ArrayBuffer and SharedArrayBuffer: a resizable one counts at its maximum. ---
  const isBuffer = brandCheck(ArrayBuffer.prototype, "byteLength");
  const SharedBuffer = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;
  const isShared = SharedBuffer ? brandCheck(SharedBuffer.prototype, "byteLength") : () => false;
  for (const Original of [ArrayBuffer, SharedBuffer]) {
    if (!Original) continue;
    const name = Original.name as "ArrayBuffer" | "SharedArrayBuffer";
    const Wrapped = wrapConstructor(
      Original as unknown as Constructor,
      (args) => {
        const options = args[1] as { maxByteLength?: unknown } | undefined;
        // Read once: a getter must not answer the engine differently than it answered the check.
        const limit = typeof options === "object" && options !== null ? toSize(options.maxByteLength) : 0;
        precheck(max(toSize(args[0]), limit));
        return limit > 0 ? [args[0], { maxByteLength: limit }] : [args[0]];
      },
      (buffer) => count(buffer, max(byteLengthOf(buffer), maxByteLengthOf(buffer))),
    );
    replaceGlobal(name, Wrapped);
  }
  for (const method of ["transfer", "transferToFixedLength"] as const) {
    wrapMethod(
      ArrayBuffer.prototype as unknown as Record<string, unknown>,
      method,
      (original) =>
        function (this: ArrayBuffer, ...args: unknown[]) {
          const length = args[0] === undefined ? byteLengthOf(this) : toSize(args[0]);
          precheck(length);
          const moved = apply(original as AnyFunction, this, [length]) as ArrayBuffer;
          count(moved, max(byteLengthOf(moved), maxByteLengthOf(moved)));
          return moved;
        },
    );
  }

  // --- Typed arrays: their constructors, and the methods that allocate without the species constructor. ---
  const typedArrayLength = brandCheckGetter(Object.getPrototypeOf(Uint8Array.prototype) as object, "length");
  for (const name of typedArrayNames) {
    const Original = (globalThis as unknown as Record<string, unknown>)[name] as (Constructor & { BYTES_PER_ELEMENT: number }) | undefined;
    if (!Original) continue;
    const perElement = Original.BYTES_PER_ELEMENT;
    const Wrapped = wrapConstructor(
      Original,
      (args) => {
        const [first] = args;
        if (typeof first !== "object" || first === null) {
          precheck(toSize(first) * perElement);
        } else if (isBuffer(first) || isShared(first)) {
          // A view of memory already counted.
        } else {
          const length = typedArrayLength(first);
          if (length !== undefined) precheck(length * perElement);
          else {
            // An array-like or iterable: read once here, so its length cannot change between the check and the copy.
            const items = arrayFrom(first as ArrayLike<unknown>);
            precheck(items.length * perElement);
            return [items];
          }
        }
        return args;
      },
      (view, args) => {
        if ((isBuffer(args[0]) || isShared(args[0])) && bufferOfView(view as ArrayBufferView) === args[0]) return;
        countView(view as ArrayBufferView);
      },
    );
    for (const method of ["fromBase64", "fromHex"]) {
      if (typeof (Original as unknown as Record<string, unknown>)[method] === "function") {
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
    }
    replaceGlobal(name, Wrapped);
  }
  // These make a new array of the same type through the engine's own constructor, not `constructor`.
  const typedArrays = Object.getPrototypeOf(Uint8Array.prototype) as Record<string, unknown>;
  for (const method of ["toReversed", "toSorted", "with"]) {
    if (typeof typedArrays[method] !== "function") continue;
    wrapMethod(
      typedArrays,
      method,
      (original) =>
        function (this: ArrayBufferView, ...args: unknown[]) {
          precheck(byteLengthOf(this));
          const copy = apply(original as AnyFunction, this, args as never[]) as ArrayBufferView;
          countView(copy);
          return copy;
        },
    );
  }

  // --- Copies made by the platform. ---
  const clone = globalThis.structuredClone;
  replaceGlobal("structuredClone", function structuredClone(value: unknown, options?: StructuredSerializeOptions) {
    if (exceeded !== null) throw new RangeError(exceeded);
    const copy = clone(value, options);
    const buffers = buffersIn(copy, isBuffer, isShared);
    for (let i = 0; i < buffers.length; i++) count(buffers[i]!, max(byteLengthOf(buffers[i]!), maxByteLengthOf(buffers[i]!)));
    return copy;
  });
  wrapMethod(
    TextEncoder.prototype as unknown as Record<string, unknown>,
    "encode",
    (original) =>
      function (this: TextEncoder, ...args: unknown[]) {
        const bytes = apply(original as AnyFunction, this, args as never[]) as Uint8Array;
        countView(bytes);
        return bytes;
      },
  );
  const subtle = crypto.subtle as unknown as Record<string, unknown>;
  const subtleProto = Object.getPrototypeOf(subtle) as Record<string, unknown>;
  for (const method of ["encrypt", "decrypt", "sign", "verify", "digest", "generateKey", "deriveKey", "deriveBits", "importKey", "exportKey", "wrapKey", "unwrapKey"]) {
    if (typeof subtleProto[method] !== "function") continue;
    wrapMethod(
      subtleProto,
      method,
      (original) =>
        function (this: SubtleCrypto, ...args: unknown[]) {
          const result = pending.track(apply(original as AnyFunction, this, args as never[]) as Promise<unknown>);
          return apply(promiseThen, result, [
            (value: unknown) => {
              if (isBuffer(value)) count(value as ArrayBuffer, byteLengthOf(value as ArrayBuffer));
              return value;
            },
          ]);
        },
    );
  }

  // --- WebAssembly: memories are capped at the budget and counted at their size; modules' own memories are capped by rewriting them. ---
  const wasm = WebAssembly as unknown as Record<string, unknown>;
  const { Memory, Module, Instance } = WebAssembly;
  const { compile, instantiate } = WebAssembly;
  const limitsOf = new WeakMap<WebAssembly.Module, WasmMemoryLimits>();
  const getLimits = WeakMap.prototype.get;
  const setLimitsOf = WeakMap.prototype.set;
  const setLimits = (module: WebAssembly.Module, limits: WasmMemoryLimits): void => void apply(setLimitsOf, limitsOf, [module, limits]);
  const capPages = Math.floor(budgetBytes / 65536);

  const isMemory = brandCheck(Memory.prototype, "buffer");
  const trackMemory = (memory: WebAssembly.Memory): void => {
    if (apply(isKnownMemory, knownMemories, [memory])) return;
    apply(addKnownMemory, knownMemories, [memory]);
    memories[memories.length] = new WeakRef(memory);
  };
  const countInstance = (instance: WebAssembly.Instance, limits: WasmMemoryLimits): void => {
    let exported = 0;
    const values = objectValues(instanceExports(instance));
    for (let i = 0; i < values.length; i++) {
      if (!isMemory(values[i]) || apply(isKnownMemory, knownMemories, [values[i]])) continue;
      trackMemory(values[i] as WebAssembly.Memory);
      exported += 1;
    }
    // A memory the module keeps to itself cannot be measured: it counts at its (capped) maximum,
    // the largest ones first when some of its memories are exported and some are not.
    const hidden = limits.maxBytes.length - exported;
    for (let n = 0; n < hidden; n++) {
      let largest = 0;
      for (let i = 0; i < limits.maxBytes.length; i++) largest = max(largest, limits.maxBytes[i]!);
      check(largest);
      counted += largest;
      register(instance, largest);
    }
  };
  const capped = (bytes: unknown): { bytes: Uint8Array; limits: WasmMemoryLimits } => {
    if (exceeded !== null) throw new RangeError(exceeded);
    const source = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : isBuffer(bytes) || isShared(bytes) ? new Uint8Array(bytes as ArrayBuffer) : null;
    if (!source) throw new TypeError("WebAssembly takes the module's bytes as an ArrayBuffer or a typed array");
    try {
      const result = capWasmMemories(source, budgetBytes);
      const initial = result.limits.initialBytes.reduce((sum, bytes) => sum + bytes, 0);
      if (initial > 0) precheck(initial);
      return result;
    } catch (error) {
      if (error instanceof WasmLimitError) throw over(error.message);
      if (error instanceof WasmMalformedError) throw new WebAssembly.CompileError(error.message);
      throw error;
    }
  };
  const moduleLimits = (module: unknown): WasmMemoryLimits => {
    const limits = apply(getLimits, limitsOf, [module]) as WasmMemoryLimits | undefined;
    if (!limits) throw new TypeError("WebAssembly: not a module compiled in this worker");
    return limits;
  };

  const WrappedMemory = wrapConstructor(
    Memory as unknown as Constructor,
    (args) => {
      const descriptor = (args[0] ?? {}) as WebAssembly.MemoryDescriptor & { address?: unknown; index?: unknown };
      const initial = toSize(descriptor.initial);
      // biome-ignore lint/complexity/useMathMinMax: work code may have replaced Math.min by the time this runs
      const maximum = descriptor.maximum === undefined ? capPages : toSize(descriptor.maximum) < capPages ? toSize(descriptor.maximum) : capPages;
      if (initial > capPages) throw over(`a WebAssembly memory of ${mib(initial * 65536)}`);
      precheck(initial * 65536);
      // A copy: a getter on the descriptor must not answer differently to the engine.
      const copy: Record<string, unknown> = { initial, maximum };
      if (descriptor.shared !== undefined) copy.shared = Boolean(descriptor.shared);
      if (descriptor.address !== undefined) copy.address = String(descriptor.address);
      if (descriptor.index !== undefined) copy.index = String(descriptor.index);
      return [copy];
    },
    (memory) => trackMemory(memory as WebAssembly.Memory),
  );
  wrapMethod(
    Memory.prototype as unknown as Record<string, unknown>,
    "grow",
    (original) =>
      function (this: WebAssembly.Memory, delta: number) {
        const bytes = toSize(delta) * 65536;
        const grown = byteLengthOf(bufferOf(this)) + bytes;
        if (grown > budgetBytes) throw over(`growing a WebAssembly memory to ${mib(grown)}`);
        precheck(bytes);
        return apply(original as (delta: number) => number, this, [toSize(delta)]);
      },
  );
  const WrappedModule = wrapConstructor(
    Module as unknown as Constructor,
    (args) => {
      const { bytes, limits } = capped(args[0]);
      pendingLimits = limits;
      return [bytes];
    },
    (module) => setLimits(module as WebAssembly.Module, pendingLimits!),
  );
  let pendingLimits: WasmMemoryLimits | undefined;
  const WrappedInstance = wrapConstructor(
    Instance as unknown as Constructor,
    (args) => {
      moduleLimits(args[0]);
      return args;
    },
    (instance, args) => countInstance(instance as WebAssembly.Instance, moduleLimits(args[0])),
  );
  wasm.Memory = WrappedMemory;
  wasm.Module = WrappedModule;
  wasm.Instance = WrappedInstance;
  wasm.compile = function compileCapped(bytes: BufferSource) {
    const { bytes: source, limits } = capped(bytes);
    return apply(promiseThen, pending.track(compile(source as Uint8Array<ArrayBuffer>)), [
      (module: WebAssembly.Module) => {
        setLimits(module, limits);
        return module;
      },
    ]);
  };
  wasm.instantiate = function instantiateCapped(source: unknown, imports?: WebAssembly.Imports) {
    if (apply(getLimits, limitsOf, [source]) !== undefined) {
      const limits = moduleLimits(source);
      return apply(promiseThen, pending.track(instantiate(source as WebAssembly.Module, imports)), [
        (instance: WebAssembly.Instance) => {
          countInstance(instance, limits);
          return instance;
        },
      ]);
    }
    const { bytes, limits } = capped(source);
    return apply(promiseThen, pending.track(instantiate(bytes as Uint8Array<ArrayBuffer>, imports)), [
      (result: WebAssembly.WebAssemblyInstantiatedSource) => {
        setLimits(result.module, limits);
        countInstance(result.instance, limits);
        return result;
      },
    ]);
  };
  // Both take a fetch Response, which work code has no way to make.
  delete wasm.compileStreaming;
  delete wasm.instantiateStreaming;

  return {
    get exceeded() {
      return exceeded;
    },
    countInstance,
    globals,
  };
}

/**
 * A constructor that runs `before` on its arguments (it may check and replace them) and `after`
 * on what the original made. It stands in for the original everywhere work code could find it:
 * the global, `prototype.constructor` (so `x.constructor` and the engine's species lookups,
 * which slice and map use, reach it too) and subclassing.
 */
function wrapConstructor(Original: Constructor, before: (args: unknown[]) => unknown[], after: (made: object, args: unknown[]) => void): Constructor {
  // A function expression, not a method: methods cannot be called with `new`.
  const Wrapped = function (this: unknown, ...args: unknown[]) {
    if (new.target === undefined) throw new TypeError(`Constructor ${Original.name} requires 'new'`);
    const checked = before(args);
    const made = construct(Original, checked, (new.target as unknown) === Wrapped ? Original : new.target) as object;
    after(made, checked);
    return made;
  } as unknown as Constructor;
  Object.defineProperty(Wrapped, "name", { value: Original.name });
  Object.setPrototypeOf(Wrapped, Object.getPrototypeOf(Original));
  for (const key of Reflect.ownKeys(Original)) {
    if (key === "prototype" || key === "length" || key === "name") continue;
    Object.defineProperty(Wrapped, key, Object.getOwnPropertyDescriptor(Original, key)!);
  }
  Object.defineProperty(Wrapped, "length", { value: Original.length });
  Object.defineProperty(Wrapped, "prototype", { value: Original.prototype, writable: false });
  Object.defineProperty(Original.prototype, "constructor", { value: Wrapped, writable: true, configurable: true, enumerable: false });
  return Wrapped;
}

function wrapMethod(owner: Record<string, unknown>, name: string, make: (original: unknown) => AnyFunction): void {
  const original = owner[name];
  const wrapped = make(original);
  Object.defineProperty(wrapped, "name", { value: name });
  Object.defineProperty(owner, name, { value: wrapped, writable: true, configurable: true, enumerable: false });
}

/** A predicate from a prototype getter's brand check: true only for real instances (never a Proxy). */
function brandCheck(proto: object, getter: string): (value: unknown) => boolean {
  const get = Object.getOwnPropertyDescriptor(proto, getter)!.get!;
  return (value) => {
    if (typeof value !== "object" || value === null) return false;
    try {
      apply(get, value, []);
      return true;
    } catch {
      return false;
    }
  };
}

function brandCheckGetter(proto: object, getter: string): (value: unknown) => number | undefined {
  const get = Object.getOwnPropertyDescriptor(proto, getter)!.get!;
  return (value) => {
    try {
      return apply(get, value, []) as number;
    } catch {
      return undefined;
    }
  };
}

const getter = (proto: object, name: string): ((this: unknown) => unknown) => Object.getOwnPropertyDescriptor(proto, name)!.get!;
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const byteLengthGetters = [getter(typedArrayProto, "byteLength"), getter(ArrayBuffer.prototype, "byteLength"), getter(DataView.prototype, "byteLength")];
const sharedByteLength = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer ? getter(SharedArrayBuffer.prototype, "byteLength") : undefined;
if (sharedByteLength) byteLengthGetters.push(sharedByteLength);
const maxByteLengthGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "maxByteLength")?.get;
const viewBuffer = getter(typedArrayProto, "buffer");
const dataViewBuffer = getter(DataView.prototype, "buffer");
const memoryBuffer = getter(WebAssembly.Memory.prototype, "buffer");
const exportsGetter = getter(WebAssembly.Instance.prototype, "exports");
const isView = ArrayBuffer.isView;
const objectKeys = Object.keys;
const mapForEach = Map.prototype.forEach;
const setForEach = Set.prototype.forEach;
const isMap = brandCheck(Map.prototype, "size");
const isSet = brandCheck(Set.prototype, "size");
const weakSetHas = WeakSet.prototype.has;
const weakSetAdd = WeakSet.prototype.add;

function byteLengthOf(value: object): number {
  for (let i = 0; i < byteLengthGetters.length; i++) {
    try {
      return apply(byteLengthGetters[i]!, value, []) as number;
    } catch {
      // not this kind
    }
  }
  return 0;
}

function maxByteLengthOf(buffer: object): number {
  try {
    return maxByteLengthGetter ? (apply(maxByteLengthGetter, buffer, []) as number) : 0;
  } catch {
    return 0;
  }
}

function bufferOfView(view: ArrayBufferView): ArrayBuffer {
  try {
    return apply(viewBuffer, view, []) as ArrayBuffer;
  } catch {
    return apply(dataViewBuffer, view, []) as ArrayBuffer;
  }
}

function bufferOf(memory: WebAssembly.Memory): ArrayBuffer {
  return apply(memoryBuffer, memory, []) as ArrayBuffer;
}

function instanceExports(instance: WebAssembly.Instance): WebAssembly.Exports {
  return apply(exportsGetter, instance, []) as WebAssembly.Exports;
}

/** ToIndex, without calling work code (objects are never passed here). */
function toSize(value: unknown): number {
  if (value === undefined || (typeof value === "object" && value !== null) || typeof value === "function") return 0;
  try {
    const number = trunc(toNumber(value));
    return isFiniteNumber(number) && number > 0 ? number : 0;
  } catch {
    return 0;
  }
}

/** Every ArrayBuffer reachable in a structured clone's copy (a fresh graph of plain data, so walking it runs no work code). */
function buffersIn(root: unknown, isBuffer: (value: unknown) => boolean, isShared: (value: unknown) => boolean): ArrayBuffer[] {
  const found: ArrayBuffer[] = [];
  const seen = new WeakSet<object>();
  const stack: unknown[] = [root];
  const push = (value: unknown): void => void (stack[stack.length] = value);
  while (stack.length > 0) {
    const value = stack[stack.length - 1];
    stack.length -= 1;
    if (typeof value !== "object" || value === null || apply(weakSetHas, seen, [value])) continue;
    apply(weakSetAdd, seen, [value]);
    if (isBuffer(value) || isShared(value)) found[found.length] = value as ArrayBuffer;
    else if (isView(value)) push(bufferOfView(value as ArrayBufferView));
    else if (isMap(value))
      apply(mapForEach, value, [
        (item: unknown, key: unknown) => {
          push(key);
          push(item);
        },
      ]);
    else if (isSet(value)) apply(setForEach, value, [(item: unknown) => push(item)]);
    else {
      const keys = objectKeys(value);
      for (let i = 0; i < keys.length; i++) push((value as Record<string, unknown>)[keys[i]!]);
    }
  }
  return found;
}
