// The memory budget, one allocation family at a time (docs/architecture.md, "The sandbox", item
// 5): buffers, typed arrays, copies the platform makes, WebAssembly. Each family's ways over a
// 256 MiB budget end their chunk as `oom` (the next chunk runs), every route to the family's
// original constructor included; under the budget, code that makes many small allocations (as
// binary-data code and npm libraries do) runs. Garbage made in one synchronous stretch counts
// until the chunk yields (see the doc), so the garbage here stays under the budget + 512 MiB.
import { describe, expect, test } from "vitest";
import { chunksFor, results, runBatch, runInPlainWorker, runWays, taskFor, volunteerSuite } from "./harness.ts";

const running = volunteerSuite();

const MiB = 1024 * 1024;
const oom = { kind: "oom", message: expect.any(String) };

describe("memory budget, by allocation family", () => {
  test("buffers: one huge, one reached by its constructor, resizable, transferred, many small kept; small ones under the budget run", { timeout: 120_000 }, async () => {
    const over = await runWays(
      running.volunteer,
      "buffers",
      `{
        "one-4GiB": () => touch(new Uint8Array(new ArrayBuffer(4096 * MiB))),
        "via-constructor": () => { const Buffer = new ArrayBuffer(8).constructor; return touch(new Uint8Array(new Buffer(1024 * MiB))); },
        "via-reflect": () => touch(new Uint8Array(Reflect.construct(ArrayBuffer, [1024 * MiB]))),
        "subclass": () => { class Big extends ArrayBuffer {} return touch(new Uint8Array(new Big(1024 * MiB))); },
        "resizable": () => { const buffer = new ArrayBuffer(MiB, { maxByteLength: 4096 * MiB }); buffer.resize(1024 * MiB); return touch(new Uint8Array(buffer)); },
        "transfer": () => touch(new Uint8Array(new ArrayBuffer(MiB).transfer(1024 * MiB))),
        "small-kept-1GiB": () => keep(65536, () => touch(new Uint8Array(new ArrayBuffer(16384)))),
        "slice": () => { const one = new ArrayBuffer(64 * MiB); return keep(16, () => touch(new Uint8Array(one.slice(0)))); },
        // With no constructor the engine copies through its own constructor.
        "slice-no-constructor": () => { const one = new ArrayBuffer(64 * MiB); one.constructor = undefined; return keep(16, () => touch(new Uint8Array(one.slice(0)))); },
        "small-slices-no-constructor": () => { const one = new ArrayBuffer(16384); one.constructor = undefined; return keep(65536, () => touch(new Uint8Array(one.slice(0)))); },
      }`,
      ["one-4GiB", "via-constructor", "via-reflect", "subclass", "resizable", "transfer", "small-kept-1GiB", "slice", "slice-no-constructor", "small-slices-no-constructor"],
    );
    for (const [name, outcome] of Object.entries(over)) expect(outcome, name).toEqual(oom);

    const under = await runWays(
      running.volunteer,
      "buffers",
      `{
        "small-garbage": () => { let sum = 0; for (let i = 0; i < 500_000; i++) { const view = new DataView(new ArrayBuffer(1024)); view.setUint32(0, i); sum += view.getUint32(0) & 1; } return sum; },
        "one-200MiB": () => touch(new Uint8Array(new ArrayBuffer(200 * MiB))),
      }`,
      ["small-garbage", "one-200MiB"],
    );
    expect(under).toEqual({ "small-garbage": 250_000, "one-200MiB": 200 * MiB });
  });

  test("typed arrays: one huge, by constructor, species copies, from/of, many small kept; small ones and views under the budget run", { timeout: 120_000 }, async () => {
    const over = await runWays(
      running.volunteer,
      "typed-arrays",
      `{
        "one-1GiB": () => touch(new Float64Array(128 * MiB)) * 8,
        "via-constructor": () => { const Bytes = new Uint8Array(1).constructor; return touch(new Bytes(1024 * MiB)); },
        "subclass": () => { class Big extends Int32Array {} return touch(new Big(256 * MiB)) * 4; },
        "from-array-like": () => touch(Uint8Array.from({ length: 1024 * MiB })),
        "slice": () => { const one = new Uint8Array(64 * MiB); return keep(16, () => touch(one.slice())); },
        "map": () => { const one = new Uint8Array(64 * MiB); return keep(16, () => touch(one.map((x) => x))); },
        "to-sorted": () => { const one = new Uint8Array(64 * MiB); return keep(16, () => touch(one.toSorted())); },
        "small-kept-1GiB": () => keep(262144, () => touch(new Uint32Array(1024))),
        // With no constructor or no species, the engine copies through its own constructor.
        "slice-no-constructor": () => { const one = new Uint8Array(64 * MiB); one.constructor = undefined; return keep(16, () => touch(one.slice())); },
        "map-no-species": () => { const one = new Uint8Array(64 * MiB); Object.defineProperty(one, "constructor", { value: { [Symbol.species]: null } }); return keep(16, () => touch(one.map((x) => x))); },
        // filter calls back once an element: 720 MiB kept first, so that few copies reach the budget + 512 MiB.
        "filter-no-constructor": () => { const ballast = [0, 1, 2].map(() => new Uint8Array(240 * MiB)); const one = new Float64Array(8 * MiB); one.constructor = undefined; return keep(16, () => touch(one.filter(() => true))) + ballast.length; },
        "small-slices-no-constructor": () => { const one = new Uint8Array(16384); one.constructor = undefined; return keep(65536, () => touch(one.slice())); },
        "getter-makes-one": () => { const one = new Uint8Array(64 * MiB); Object.defineProperty(one, "constructor", { get: () => { new Uint8Array(16); return undefined; } }); return keep(16, () => touch(one.slice())); },
      }`,
      [
        "one-1GiB",
        "via-constructor",
        "subclass",
        "from-array-like",
        "slice",
        "map",
        "to-sorted",
        "small-kept-1GiB",
        "slice-no-constructor",
        "map-no-species",
        "filter-no-constructor",
        "small-slices-no-constructor",
        "getter-makes-one",
      ],
    );
    for (const [name, outcome] of Object.entries(over)) expect(outcome, name).toEqual(oom);

    const under = await runWays(
      running.volunteer,
      "typed-arrays",
      `{
        "small-garbage": () => { let sum = 0; for (let i = 0; i < 1_000_000; i++) { const bytes = new Uint8Array(32); bytes[0] = i; sum += bytes.slice(0, 16)[0] & 1; } return sum; },
        "views-of-200MiB": () => { const big = new Uint8Array(200 * MiB); let sum = 0; for (let i = 0; i < 100_000; i++) sum += big.subarray(i, i + 1024).length; return sum + touch(big); },
        "from-arrays": () => { let sum = 0; for (let i = 0; i < 200_000; i++) sum += new Float64Array([i, 1, 2])[0] > -1 ? 1 : 0; return sum; },
      }`,
      ["small-garbage", "views-of-200MiB", "from-arrays"],
    );
    expect(under).toEqual({ "small-garbage": 500_000, "views-of-200MiB": 100_000 * 1024 + 200 * MiB, "from-arrays": 200_000 });
  });

  test("platform copies: structuredClone and TextEncoder over the budget fail; small ones run", { timeout: 120_000 }, async () => {
    const over = await runWays(
      running.volunteer,
      "platform-copies",
      `{
        "structured-clone": () => { const one = new Uint8Array(64 * MiB); return keep(16, () => touch(structuredClone(one))); },
        "structured-clone-nested": () => { const one = { a: [new Uint8Array(64 * MiB)] }; return keep(16, () => touch(structuredClone(one).a[0])); },
        "text-encoder": () => { const text = "x".repeat(16 * MiB); const encoder = new TextEncoder(); return keep(64, () => touch(encoder.encode(text))); },
      }`,
      ["structured-clone", "structured-clone-nested", "text-encoder"],
    );
    for (const [name, outcome] of Object.entries(over)) expect(outcome, name).toEqual(oom);

    const under = await runWays(
      running.volunteer,
      "platform-copies",
      `{
        "small-encodes": () => { const encoder = new TextEncoder(); let sum = 0; for (let i = 0; i < 500_000; i++) sum += encoder.encode("crowdcompute:" + i).length; return sum > 0; },
        "small-clones": () => { let sum = 0; for (let i = 0; i < 50_000; i++) sum += structuredClone({ bytes: new Uint8Array(64) }).bytes.length; return sum; },
        "digests": async () => { let sum = 0; for (let i = 0; i < 200; i++) sum += (await crypto.subtle.digest("SHA-256", new Uint8Array(64))).byteLength; return sum; },
      }`,
      ["small-encodes", "small-clones", "digests"],
    );
    expect(under).toEqual({ "small-encodes": true, "small-clones": 50_000 * 64, digests: 200 * 32 });
  });

  test("streams: a byte stream's autoAllocateChunkSize (buffers the engine allocates per read) is refused; streams without it run; outside the sandbox the engine hands out the buffers (positive control)", {
    timeout: 60_000,
  }, async () => {
    const source = `const MiB = 1024 * 1024;
      const touch = (bytes) => { for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1; return bytes.length; };
      // Each read of a default reader on an empty byte stream allocates autoAllocateChunkSize bytes, handed to pull as byobRequest.view.
      const autoAllocated = (mib) => { let total = 0; const stream = new ReadableStream({ type: "bytes", autoAllocateChunkSize: mib * MiB, pull(c) { total += touch(c.byobRequest.view); c.byobRequest.respond(1); } }); const reader = stream.getReader(); return Promise.all([reader.read(), reader.read()]).then(() => total); };
      const byGetter = () => { let asked = 0; return new ReadableStream({ type: "bytes", get autoAllocateChunkSize() { return asked++ === 0 ? undefined : 1024 * MiB; }, pull(c) { c.enqueue(new Uint8Array(8)); } }).getReader().read().then(({ value }) => value.length); };
      const enqueued = async () => { const stream = new ReadableStream({ type: "bytes", start(c) { c.enqueue(new Uint8Array(16)); c.close(); } }); let sum = 0; for await (const chunk of stream) sum += chunk.length; return sum; };
      const byob = async () => { const stream = new ReadableStream({ type: "bytes", pull(c) { c.byobRequest.view[0] = 7; c.byobRequest.respond(1); } }); const { value } = await stream.getReader({ mode: "byob" }).read(new Uint8Array(4)); return value[0]; };
      const plain = async () => { const stream = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } }); let text = ""; for await (const chunk of stream) text += chunk; return text + new TransformStream().readable.constructor.name; };
      globalThis.ccStreams = { autoAllocated, byGetter, enqueued, byob, plain };`;
    const code = `${source}\n export default async (input) => input === "probe" ? "fine" : await ccStreams[input.name](input.mib);`;
    const task = taskFor(code, { taskId: "memory-streams", timeoutMs: 30_000 });
    const found: Record<string, unknown> = {};
    for (const name of ["autoAllocated", "byGetter", "enqueued", "byob", "plain"]) {
      const [outcome, after] = results(await runBatch(running.volunteer, task, chunksFor([{ name, mib: 1024 }, "probe"], name)));
      expect(after, `${name}: the chunk after it`).toBe("fine");
      found[name] = outcome;
    }
    const refused = { kind: "throw", message: expect.stringContaining("autoAllocateChunkSize is not offered") };
    expect(found).toEqual({ autoAllocated: refused, byGetter: 8, enqueued: 16, byob: 7, plain: "abReadableStream" });
    // 2 × 256 MiB, committed outside any budget (the machine is shared).
    expect(await runInPlainWorker(running.volunteer, source, "ccStreams.autoAllocated(input)", 256)).toBe(512 * MiB);
  });

  test("garbage: counted until the chunk lets its event loop run; a loop that awaits ctx.yield() now and then makes GiBs of it", { timeout: 120_000 }, async () => {
    // 2 GiB of 1 KiB buffers, none kept: without a pause no collection can be seen (finalization
    // callbacks run between tasks), so the count passes the budget + 512 MiB and the chunk fails
    // as oom, saying how to pause; with ctx.yield() every 10,000 the collected ones are subtracted.
    const code = `export default async (input, ctx) => {
      let sum = 0;
      for (let i = 0; i < 2_000_000; i++) {
        sum += new Uint8Array(1024).length;
        if (input === "pauses" && i % 10_000 === 0) await ctx.yield();
      }
      return sum;
    };`;
    const task = taskFor(code, { taskId: "memory-garbage", timeoutMs: 60_000 });
    const [withoutPauses] = results(await runBatch(running.volunteer, task, chunksFor(["no-pauses"], "no-pauses")));
    const [withPauses] = results(await runBatch(running.volunteer, task, chunksFor(["pauses"], "pauses")));
    expect(withoutPauses).toEqual({ kind: "oom", message: expect.stringContaining("await ctx.yield()") });
    expect(withPauses).toBe(2_000_000 * 1024);
  });

  test("WebAssembly: memories created, grown or declared over the budget fail; under it they run", { timeout: 120_000 }, async () => {
    // (module (memory (export "memory") 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
    const growModule = "new Uint8Array([0,97,115,109,1,0,0,0,1,6,1,96,1,127,1,127,3,2,1,0,5,3,1,0,1,7,17,2,6,109,101,109,111,114,121,2,0,4,103,114,111,119,0,0,10,8,1,6,0,32,0,64,0,11])";
    const over = await runWays(
      running.volunteer,
      "wasm",
      `{
        "memory-initial": () => touch(new Uint8Array(new WebAssembly.Memory({ initial: 16384 }).buffer)),
        "memory-grow": () => { const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); memory.grow(16383); return touch(new Uint8Array(memory.buffer)); },
        "many-memories": () => keep(16, () => { const memory = new WebAssembly.Memory({ initial: 1024 }); return touch(new Uint8Array(memory.buffer)); }),
        "module-grow": () => { const instance = new WebAssembly.Instance(new WebAssembly.Module(${growModule})); return instance.exports.grow(16383) === -1 ? "refused" : touch(new Uint8Array(instance.exports.memory.buffer)); },
        "instantiate-grow": async () => { const { instance } = await WebAssembly.instantiate(${growModule}); return instance.exports.grow(16383) === -1 ? "refused" : touch(new Uint8Array(instance.exports.memory.buffer)); },
      }`,
      ["memory-initial", "memory-grow", "many-memories", "module-grow", "instantiate-grow"],
    );
    for (const [name, outcome] of Object.entries(over)) {
      // A module's own memory is capped by rewriting it: its memory.grow refuses, nothing is committed.
      if (name.endsWith("-grow") && name !== "memory-grow" && outcome === "refused") continue;
      expect(outcome, name).toEqual(oom);
    }

    const under = await runWays(
      running.volunteer,
      "wasm",
      `{
        "memory-64MiB": () => { const memory = new WebAssembly.Memory({ initial: 1 }); memory.grow(1023); return touch(new Uint8Array(memory.buffer)); },
        "module-grow-64MiB": async () => { const module = await WebAssembly.compile(${growModule}); const instance = await WebAssembly.instantiate(module); instance.exports.grow(1023); return touch(new Uint8Array(instance.exports.memory.buffer)); },
      }`,
      ["memory-64MiB", "module-grow-64MiB"],
    );
    expect(under).toEqual({ "memory-64MiB": 64 * 1024 * 1024, "module-grow-64MiB": 64 * 1024 * 1024 });
  });
});
