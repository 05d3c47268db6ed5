// Work-code payloads that try to use a volunteer's machine beyond their chunk: work left running
// after the chunk returns, memory past the task's budget, a frame flooded with messages, and
// capabilities the task did not ask for. Each is one classic-script source, so the very same
// text runs in the sandbox and, as the positive control, in a plain worker.

/** Ways to leave work running once the chunk has returned; each call `mark()`s when it runs. */
export const leftoverNames = [
  "timeout",
  "interval",
  "nested-timeouts",
  "microtask-loop",
  "promise-chain",
  "message-loop",
  "abort-signal-timeout",
  "message-listener",
  "subtle-crypto",
  "wasm-compile",
  "scheduler",
  "animation-frame",
] as const;

export type LeftoverName = (typeof leftoverNames)[number];

export const leftoverSource = String.raw`
(() => {
  const spin = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
  // When each piece of left work ran, on the clock the page shares (timeOrigin + now).
  const mark = () => { const marks = (globalThis.leftoverMarks ??= []); if (marks.length < 10000) marks.push(performance.timeOrigin + performance.now()); };
  globalThis.ccLeftover = {
    timeout: () => setTimeout(() => { mark(); spin(100); }, 20),
    interval: () => setInterval(() => { mark(); spin(20); }, 5),
    "nested-timeouts": () => { const again = () => { mark(); spin(10); setTimeout(again, 0); }; setTimeout(again, 0); },
    "microtask-loop": () => { (async () => { for (;;) { mark(); spin(1); await null; } })(); },
    "promise-chain": () => { const step = () => Promise.resolve().then(() => { mark(); spin(1); return step(); }); step(); },
    "message-loop": () => { const { port1, port2 } = new MessageChannel(); port1.onmessage = () => { mark(); spin(5); port2.postMessage(0); }; port2.postMessage(0); },
    "abort-signal-timeout": (ctx) => ctx.signal.constructor.timeout(20).addEventListener("abort", () => { mark(); spin(100); }),
    // Runs whenever the worker gets a message: the frame's next chunk, or a cancel.
    "message-listener": () => self.addEventListener("message", () => { mark(); spin(50); }),
    "subtle-crypto": () => crypto.subtle.digest("SHA-256", new Uint8Array(1 << 20)).then(() => { mark(); spin(100); }),
    "wasm-compile": () => WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])).then(() => { mark(); spin(100); }),
    scheduler: () => scheduler.postTask(() => { mark(); spin(100); }, { delay: 20 }),
    "animation-frame": () => requestAnimationFrame(() => { mark(); spin(100); }),
  };
})();
`;

/** Ways to hold memory; each takes the MiB to allocate (in all) and returns what it got. */
export const memoryNames = [
  "one-buffer",
  "one-typed-array",
  "many-buffers",
  "many-small-buffers",
  "resizable-buffer",
  "transfer",
  "wasm-memory",
  "wasm-module-memory",
  "structured-clone",
  "slice",
  "to-reversed",
  "text-encoder",
] as const;

export const memorySource = String.raw`
(() => {
  const MiB = 1024 * 1024;
  // Writes a byte per page, so the memory is committed, not just reserved.
  const touch = (bytes) => { for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1; return bytes.length; };
  const many = (mib, step, make) => { const keep = []; for (let got = 0; got < mib; got += step) keep.push(make(Math.min(step, mib - got))); globalThis.kept = keep; return keep.length; };
  // (module (memory (export "memory") 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  const growModule = new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,5,3,1,0,1,7,17,2,6,109,101,109,111,114,121,2,0,4,103,114,111,119,0,0,10,8,1,6,0,32,0,64,0,11]);
  globalThis.ccMemory = {
    "one-buffer": (mib) => touch(new Uint8Array(new ArrayBuffer(mib * MiB))),
    "one-typed-array": (mib) => touch(new Float64Array(mib * MiB / 8).fill(1)) * 8,
    "many-buffers": (mib) => many(mib, 64, (n) => touch(new Uint8Array(n * MiB))),
    "many-small-buffers": (mib) => many(mib * 16, 1, () => touch(new Uint8Array(MiB / 16))),
    "resizable-buffer": (mib) => { const buffer = new ArrayBuffer(MiB, { maxByteLength: 4 * 1024 * MiB }); buffer.resize(mib * MiB); return touch(new Uint8Array(buffer)); },
    transfer: (mib) => touch(new Uint8Array(new ArrayBuffer(MiB).transfer(mib * MiB))),
    "wasm-memory": (mib) => { const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); memory.grow(mib * 16 - 1); return touch(new Uint8Array(memory.buffer)); },
    "wasm-module-memory": (mib) => {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(growModule));
      if (instance.exports.grow(mib * 16 - 1) === -1) return "memory.grow refused";
      return touch(new Uint8Array(instance.exports.memory.buffer));
    },
    "structured-clone": (mib) => { const one = new Uint8Array(64 * MiB); return many(mib, 64, () => touch(structuredClone(one))); },
    slice: (mib) => { const one = new Uint8Array(64 * MiB); return many(mib, 64, () => touch(one.slice())); },
    "to-reversed": (mib) => { const one = new Uint8Array(64 * MiB); return many(mib, 64, () => touch(one.toReversed())); },
    "text-encoder": (mib) => { const text = "x".repeat(16 * MiB); const encoder = new TextEncoder(); return many(mib, 16, () => touch(encoder.encode(text))); },
  };
})();
`;

/** Ways to flood the frame with messages from a worker, each for `ms`. */
export const floodNames = ["post-message", "post-message-via-prototype", "uncaught-errors", "unhandled-rejections", "progress", "console"] as const;

export const floodSource = String.raw`
(() => {
  const until = (ms, each) => { const end = performance.now() + ms; let n = 0; while (performance.now() < end) { each(n); n++; } return n; };
  const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const findPost = () => {
    for (let proto = self; proto; proto = Object.getPrototypeOf(proto)) {
      const found = Object.getOwnPropertyDescriptor(proto, "postMessage");
      if (found && typeof found.value === "function") return found.value.bind(self);
    }
    throw new Error("postMessage is gone");
  };
  const big = "x".repeat(64 * 1024);
  globalThis.ccFlood = {
    "post-message": async (ms) => until(ms, (n) => postMessage({ type: "cc-chunk-progress", key: "chunk-" + (n % 4), fraction: 0.5, message: big })),
    "post-message-via-prototype": async (ms) => { const post = findPost(); return until(ms, () => post(big)); },
    "uncaught-errors": async (ms) => { const n = until(ms / 2, () => setTimeout(() => { throw new Error(big); }, 0)); await later(ms / 2); return n; },
    "unhandled-rejections": async (ms) => until(ms, () => Promise.reject(new Error(big))),
    progress: async (ms, ctx) => until(ms, (n) => ctx.progress(n % 2, big)),
    console: async (ms) => until(ms, () => console.log(big)),
  };
})();
`;

/** What a task may find in its worker's scope: the capabilities and storage it must not be offered. */
export const capabilitySource = String.raw`
(() => {
  const reach = (object, name) => {
    try { if (object?.[name] !== undefined) return typeof object[name]; } catch (err) { return "throws"; }
    for (let proto = object; proto; proto = Object.getPrototypeOf(proto)) {
      const found = Object.getOwnPropertyDescriptor(proto, name);
      if (found?.get) { try { return typeof found.get.call(object); } catch { return "throws"; } }
      if (found && found.value !== undefined) return typeof found.value;
    }
    return "undefined";
  };
  globalThis.ccCapabilities = () => {
    const nav = self.navigator;
    const found = {};
    for (const name of ["gpu", "usb", "hid", "serial", "bluetooth", "storage", "storageBuckets", "locks", "permissions", "mediaCapabilities", "connection", "userAgentData", "deviceMemory"]) found["navigator." + name] = reach(nav, name);
    for (const name of ["indexedDB", "caches", "fetch", "XMLHttpRequest", "WebSocket", "importScripts", "Worker", "BroadcastChannel", "MessageChannel", "webkitRequestFileSystem", "webkitRequestFileSystemSync", "FileReaderSync", "Blob", "postMessage", "close", "reportError", "scheduler", "requestAnimationFrame", "OffscreenCanvas", "createImageBitmap", "fonts", "WebTransport", "RTCPeerConnection", "Notification", "CompressionStream"]) found[name] = reach(self, name);
    // And what work code needs.
    for (const name of ["Math", "JSON", "Uint8Array", "WebAssembly", "TextEncoder", "TextDecoder", "setTimeout", "structuredClone", "console", "performance", "crypto", "atob", "AbortController"]) found[name] = reach(self, name);
    found["crypto.getRandomValues"] = typeof crypto.getRandomValues;
    found["crypto.subtle.digest"] = typeof crypto.subtle?.digest;
    found["performance.now"] = typeof performance.now;
    found.globals = Object.getOwnPropertyNames(self).length;
    return found;
  };
})();
`;
