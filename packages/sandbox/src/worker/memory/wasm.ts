// The memory budget's WebAssembly (docs/architecture.md, "The sandbox", item 5): memories are
// capped at the budget and measured at their size whenever the total is checked (they grow in
// place); a module's own memories are capped by rewriting its memory section (wasm-limits.ts),
// and one it keeps to itself counts at its capped maximum.

import { capWasmMemories, mib, WasmLimitError, WasmMalformedError, type WasmMemoryLimits } from "../../wasm-limits.ts";
import { apply, construct, max, objectValues, promiseThen } from "../intrinsics.ts";
import type { Accounting } from "./accounting.ts";
import { anyBufferByteLength, type Constructor, isAnyBuffer, standIn, toSize, wrapMethod } from "./wrap.ts";

const memoryBuffer = Object.getOwnPropertyDescriptor(WebAssembly.Memory.prototype, "buffer")!.get!;
const exportsGetter = Object.getOwnPropertyDescriptor(WebAssembly.Instance.prototype, "exports")!.get!;

/** True only for a real WebAssembly.Memory (never a Proxy). */
function isMemory(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  try {
    apply(memoryBuffer, value, []);
    return true;
  } catch {
    return false;
  }
}

/** A constructor that runs `before` on its arguments (it may check and replace them) and `after` on what the original made. */
function wrapConstructor(Original: Constructor, before: (args: unknown[]) => unknown[], after: (made: object, args: unknown[]) => void): Constructor {
  const Wrapped = function (this: unknown, ...args: unknown[]) {
    if (new.target === undefined) throw new TypeError(`Constructor ${Original.name} requires 'new'`);
    const checked = before(args);
    const made = construct(Original, checked, (new.target as unknown) === Wrapped ? Original : new.target) as object;
    after(made, checked);
    return made;
  } as unknown as Constructor;
  return standIn(Original, Wrapped);
}

export function installWasm(accounting: Accounting): { countInstance(instance: WebAssembly.Instance, limits: WasmMemoryLimits): void } {
  const { budgetBytes, over, precheck } = accounting;
  const wasm = WebAssembly as unknown as Record<string, unknown>;
  const { Memory, Module, Instance } = WebAssembly;
  const { compile, instantiate } = WebAssembly;
  const limitsOf = new WeakMap<WebAssembly.Module, WasmMemoryLimits>();
  const getLimits = WeakMap.prototype.get;
  const setLimitsOf = WeakMap.prototype.set;
  const setLimits = (module: WebAssembly.Module, limits: WasmMemoryLimits): void => void apply(setLimitsOf, limitsOf, [module, limits]);
  const capPages = Math.floor(budgetBytes / 65536);

  const countInstance = (instance: WebAssembly.Instance, limits: WasmMemoryLimits): void => {
    let exported = 0;
    const values = objectValues(apply(exportsGetter, instance, []) as WebAssembly.Exports);
    for (let i = 0; i < values.length; i++) {
      if (!isMemory(values[i]) || accounting.isTrackedMemory(values[i])) continue;
      accounting.trackMemory(values[i] as WebAssembly.Memory);
      exported += 1;
    }
    // A memory the module keeps to itself cannot be measured: it counts at its (capped) maximum,
    // the largest ones first when some of its memories are exported and some are not.
    const hidden = limits.maxBytes.length - exported;
    for (let n = 0; n < hidden; n++) {
      let largest = 0;
      for (let i = 0; i < limits.maxBytes.length; i++) largest = max(largest, limits.maxBytes[i]!);
      accounting.countExact(instance, largest);
    }
  };
  const capped = (bytes: unknown): { bytes: Uint8Array; limits: WasmMemoryLimits } => {
    const exceeded = accounting.exceeded();
    if (exceeded !== null) throw new RangeError(exceeded);
    const source = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : isAnyBuffer(bytes) ? new Uint8Array(bytes as ArrayBuffer) : null;
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
    (memory) => accounting.trackMemory(memory as WebAssembly.Memory),
  );
  wrapMethod(
    Memory.prototype as unknown as Record<string, unknown>,
    "grow",
    (original) =>
      function (this: WebAssembly.Memory, delta: number) {
        const bytes = toSize(delta) * 65536;
        const grown = anyBufferByteLength(apply(memoryBuffer, this, []) as ArrayBuffer) + bytes;
        if (grown > budgetBytes) throw over(`growing a WebAssembly memory to ${mib(grown)}`);
        precheck(bytes);
        return apply(original as (delta: number) => number, this, [toSize(delta)]);
      },
  );
  let pendingLimits: WasmMemoryLimits | undefined;
  const WrappedModule = wrapConstructor(
    Module as unknown as Constructor,
    (args) => {
      const { bytes, limits } = capped(args[0]);
      pendingLimits = limits;
      return [bytes];
    },
    (module) => setLimits(module as WebAssembly.Module, pendingLimits!),
  );
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
    return apply(promiseThen, accounting.pending.track(compile(source as Uint8Array<ArrayBuffer>)), [
      (module: WebAssembly.Module) => {
        setLimits(module, limits);
        return module;
      },
    ]);
  };
  wasm.instantiate = function instantiateCapped(source: unknown, imports?: WebAssembly.Imports) {
    if (apply(getLimits, limitsOf, [source]) !== undefined) {
      const limits = moduleLimits(source);
      return apply(promiseThen, accounting.pending.track(instantiate(source as WebAssembly.Module, imports)), [
        (instance: WebAssembly.Instance) => {
          countInstance(instance, limits);
          return instance;
        },
      ]);
    }
    const { bytes, limits } = capped(source);
    return apply(promiseThen, accounting.pending.track(instantiate(bytes as Uint8Array<ArrayBuffer>, imports)), [
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
  return { countInstance };
}
