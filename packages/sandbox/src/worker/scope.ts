// The scope work code runs in (docs/architecture.md, "The sandbox"): an allow-list. Every
// property of the worker's global object and of its WorkerGlobalScope prototypes that is not
// listed here is removed before work code loads, so a storage route, device or scheduling API
// the browser has now or adds later is simply not there (a deny-list missed storage buckets
// and the prefixed file system, which kept data across tasks and browser restarts).

import { typedArrayNames } from "./intrinsics.ts";

/** ECMAScript's own globals, including ones engines may add soon (absent ones are skipped). */
const language = [
  "globalThis",
  "Infinity",
  "NaN",
  "undefined",
  "eval",
  "isFinite",
  "isNaN",
  "parseFloat",
  "parseInt",
  "decodeURI",
  "decodeURIComponent",
  "encodeURI",
  "encodeURIComponent",
  "escape",
  "unescape",
  "Object",
  "Function",
  "Array",
  "Number",
  "Boolean",
  "String",
  "Symbol",
  "BigInt",
  "Date",
  "RegExp",
  "Promise",
  "Proxy",
  "Reflect",
  "Error",
  "AggregateError",
  "EvalError",
  "RangeError",
  "ReferenceError",
  "SyntaxError",
  "TypeError",
  "URIError",
  "SuppressedError",
  "Map",
  "Set",
  "WeakMap",
  "WeakSet",
  "WeakRef",
  "FinalizationRegistry",
  "Iterator",
  "AsyncIterator",
  "DisposableStack",
  "AsyncDisposableStack",
  "JSON",
  "Math",
  "Intl",
  "Atomics",
  "Temporal",
  "ArrayBuffer",
  "SharedArrayBuffer",
  "DataView",
  ...typedArrayNames,
  "WebAssembly",
];

/** What computing needs of the web platform: no storage, network, devices, messaging or workers. */
const platform = [
  "self",
  "console",
  "navigator",
  "performance",
  "crypto",
  "Crypto",
  "SubtleCrypto",
  "CryptoKey",
  "setTimeout",
  "clearTimeout",
  "setInterval",
  "clearInterval",
  "queueMicrotask",
  "structuredClone",
  "atob",
  "btoa",
  "TextEncoder",
  "TextDecoder",
  "URL",
  "URLSearchParams",
  "AbortController",
  "AbortSignal",
  "DOMException",
  "Event",
  "EventTarget",
  "ReadableStream",
  "ReadableStreamDefaultReader",
  "ReadableStreamBYOBReader",
  "ReadableStreamDefaultController",
  "ReadableByteStreamController",
  "ReadableStreamBYOBRequest",
  "WritableStream",
  "WritableStreamDefaultWriter",
  "WritableStreamDefaultController",
  "TransformStream",
  "TransformStreamDefaultController",
  "ByteLengthQueuingStrategy",
  "CountQueuingStrategy",
  "WorkerGlobalScope",
  "DedicatedWorkerGlobalScope",
  "isSecureContext",
  "crossOriginIsolated",
];

const allowed = new Set([...language, ...platform, "constructor"]);
const pinned = ["indexedDB", "caches", "BroadcastChannel", "Worker", "SharedWorker"];
/** WebGPU's interfaces and constants (GPUBufferUsage, …), offered only to tasks that require WebGPU. */
const isGpuName = (name: string): boolean => /^(GPU|WGSL)/.test(name);

export interface ScopeOptions {
  /** The task requires WebGPU: `navigator.gpu` and the GPU* globals stay. */
  webgpu: boolean;
  gpu: GPU | undefined;
  /** Values work code gets in place of the browser's (console, timers, …), installed as own properties of the global. */
  replacements: Record<string, unknown>;
}

/**
 * Removes everything not allowed from the global object and the prototypes between it and
 * EventTarget.prototype (which AbortSignal shares, so it is left whole), then installs the
 * replacements. Returns what it could not remove: the worker then refuses to load work code.
 */
export function restrictScope({ webgpu, gpu, replacements: given }: ScopeOptions): string[] {
  const global = globalThis as unknown as Record<string, unknown>;
  // A plain object: the real one's prototype holds storage, storageBuckets, locks, usb, hid, serial, …
  const navigator = Object.freeze({
    hardwareConcurrency: readNavigator("hardwareConcurrency"),
    userAgent: readNavigator("userAgent"),
    language: readNavigator("language"),
    languages: Object.freeze([...((readNavigator("languages") as string[] | undefined) ?? [])]),
    ...(webgpu && gpu ? { gpu } : {}),
  });
  const replacements: Record<string, unknown> = { ...given, navigator };
  const failed: string[] = [];
  const keep = (name: string): boolean => allowed.has(name) || (webgpu && isGpuName(name));
  for (let object: object | null = global; object && object !== EventTarget.prototype && object !== Object.prototype; object = Object.getPrototypeOf(object)) {
    for (const name of Object.getOwnPropertyNames(object)) {
      if (keep(name) && !(name in replacements)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(object, name);
      if (descriptor?.configurable) {
        Reflect.deleteProperty(object, name);
        continue;
      }
      // Non-configurable: constants such as TEMPORARY stay (a number holds nothing); anything else is a hole.
      const constant = descriptor && "value" in descriptor && (typeof descriptor.value !== "object" || descriptor.value === null) && typeof descriptor.value !== "function";
      if (!constant) failed.push(name);
    }
  }
  for (const [name, value] of Object.entries(replacements)) {
    Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
  }
  // The names of storage and workers stay taken: work code cannot plant look-alikes there for
  // a library that tests `typeof indexedDB` to trust.
  for (const name of pinned) Object.defineProperty(global, name, { value: undefined, writable: false, configurable: false, enumerable: false });
  return failed;
}

const navigatorBeforeLockdown = globalThis.navigator as unknown as Record<string, unknown>;
function readNavigator(name: string): unknown {
  return navigatorBeforeLockdown[name];
}

/**
 * Listeners on the worker's global would run work code whenever the frame sends the worker a
 * message (between chunks, outside any deadline), so EventTarget's methods refuse the global.
 * Called after the bootstrap added its own listeners.
 */
export function guardGlobalEvents(): void {
  const proto = EventTarget.prototype;
  for (const name of ["addEventListener", "removeEventListener", "dispatchEvent"] as const) {
    const original = proto[name] as (this: EventTarget, ...args: unknown[]) => unknown;
    Object.defineProperty(proto, name, {
      value: {
        [name](this: EventTarget, ...args: unknown[]) {
          if (this === globalThis) throw new TypeError(`work code may not ${name === "dispatchEvent" ? "dispatch" : "listen to"} the worker's own events`);
          return original.apply(this, args);
        },
      }[name],
      writable: true,
      configurable: true,
    });
  }
  // A timer outside the allow-listed ones: setTimeout is the tracked way to wait.
  Reflect.deleteProperty(AbortSignal, "timeout");
}
