// The typed arrays' own `subarray`, `slice` and `map` (worker/memory/typed-array-fast.ts; docs/
// architecture.md, "The sandbox", item 5): what they make is what the language makes (the same
// code's answers in a fresh Node context are the expected ones), every case they leave to the built-in included,
// and the copies they make count against the memory budget as any other allocation does.
import { runInNewContext } from "node:vm";
import { expect, test } from "vitest";
import { chunksFor, results, runBatch, runWays, taskFor, volunteerSuite } from "./harness.ts";

const running = volunteerSuite();

/** Each case: a name and what it made, as plain data (type, length, offset, whether it shares its source's buffer, an FNV-1a hash of its bytes). */
const cases = `(() => {
  const types = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
  const show = (x, source) => x instanceof Object && ArrayBuffer.isView(x)
    ? { type: x.constructor.name, length: x.length, offset: x.byteOffset, shares: x.buffer === source.buffer, bytes: new Uint8Array(x.buffer, x.byteOffset, x.byteLength).reduce((hash, byte) => Math.imul(hash ^ byte, 16777619) >>> 0, 2166136261) }
    : String(x);
  const tried = (make, source) => { try { return show(make(), source); } catch (error) { return error.constructor.name; } };
  const found = {};
  for (const Type of types) {
    for (const length of [0, 5, 40, 100, 300]) {
      const source = new Type(length);
      for (let i = 0; i < length; i++) source[i] = Type.name.startsWith("Big") ? BigInt(i * 37 - 50) : (i * 37 - 50) / (Type.name.startsWith("Float") ? 3 : 1);
      const shifted = new Type(source.buffer, Type.BYTES_PER_ELEMENT * Math.min(length, 3));
      for (const [begin, end] of [[], [0], [2], [-3], [1, 4], [-10, -2], [3, 1], [0.7, 2.9], [-0, 7], [NaN, 5], [-Infinity, Infinity], [2, undefined], [undefined, 3], ["1", 3], [{ valueOf: () => 2 }, 4]]) {
        const args = [begin, end].slice(0, end === undefined && begin === undefined ? 0 : end === undefined ? 1 : 2);
        found[\`\${Type.name} \${length} slice(\${args})\`] = tried(() => source.slice(...args), source);
        found[\`\${Type.name} \${length} subarray(\${args})\`] = tried(() => source.subarray(...args), source);
        found[\`\${Type.name} \${length} shifted slice(\${args})\`] = tried(() => shifted.slice(...args), shifted);
        found[\`\${Type.name} \${length} shifted subarray(\${args})\`] = tried(() => shifted.subarray(...args), shifted);
      }
      const big = Type.name.startsWith("Big");
      found[\`\${Type.name} \${length} map\`] = tried(() => source.map((x, i, array) => (array === source ? x * (big ? 3n : 3) - (big ? BigInt(i) : i) : x)), source);
      found[\`\${Type.name} \${length} shifted map\`] = tried(() => shifted.map((x) => x + x), shifted);
      found[\`\${Type.name} \${length} map with this\`] = tried(() => source.map(function () { return this.k; }, { k: big ? 7n : 7.5 }), source);
      found[\`\${Type.name} \${length} map to the wrong kind\`] = tried(() => source.map(() => (big ? 1 : 1n)), source);
    }
  }
  // What the built-ins decide: subclasses, an own constructor, a species, resizable and detached buffers, wrong receivers.
  class Bytes extends Uint8Array {}
  const mine = new Bytes([1, 2, 3, 4]);
  found["subclass slice"] = tried(() => mine.slice(1, 3), mine);
  found["subclass subarray"] = tried(() => mine.subarray(1, 3), mine);
  found["subclass map"] = tried(() => mine.map((x) => x + 1), mine);
  const own = new Uint16Array([1, 2, 3]);
  own.constructor = Int32Array;
  found["own constructor slice"] = tried(() => own.slice(1), own);
  found["own constructor subarray"] = tried(() => own.subarray(1), own);
  found["own constructor map"] = tried(() => own.map((x) => x * 2), own);
  let reads = 0;
  const watched = new Uint8Array([1, 2, 3]);
  Object.defineProperty(watched, "constructor", { get: () => (reads++, Uint8Array) });
  found["map reads the constructor once"] = [tried(() => watched.map((x) => x + 1), watched), reads];
  found["map's callback replaces the constructor"] = tried(() => { const changing = new Uint8Array([1, 2, 3]); return changing.map((x) => { changing.constructor = Int32Array; return x; }); }, {});
  found["map with no function"] = tried(() => new Uint8Array(3).map(), {});
  found["map with a class"] = tried(() => new Uint8Array(3).map(class {}), {});
  found["map's callback throws"] = tried(() => new Uint8Array(3).map(() => { throw new RangeError("no"); }), {});
  for (const [Real, Posing] of [[Uint8Array, Float64Array], [Uint8Array, Uint16Array], [Int8Array, Uint8ClampedArray]]) {
    const posing = Object.setPrototypeOf(new Real(200).map((_, i) => i * 7 - 90), Posing.prototype);
    found[\`\${Real.name} as \${Posing.name} slice\`] = tried(() => posing.slice(1, 150), posing);
    found[\`\${Real.name} as \${Posing.name} small slice\`] = tried(() => posing.slice(1, 9), posing);
    found[\`\${Real.name} as \${Posing.name} subarray\`] = tried(() => posing.subarray(1, 3), posing);
    found[\`\${Real.name} as \${Posing.name} map\`] = tried(() => posing.map((x) => x + 1), posing);
  }
  const resizable = new ArrayBuffer(16, { maxByteLength: 64 });
  const tracking = new Uint8Array(resizable);
  tracking.set([9, 8, 7, 6]);
  const trackingView = tracking.subarray(2);
  resizable.resize(32);
  found["length-tracking subarray after a resize"] = trackingView.length;
  found["resizable slice"] = tried(() => tracking.slice(1, 5), tracking);
  found["map's callback shrinks the buffer"] = tried(() => tracking.map((x, i) => { if (i === 1) resizable.resize(8); return x + 1; }), tracking);
  const leaving = new Uint8Array(8).fill(5);
  found["map's callback detaches the buffer"] = tried(() => leaving.map((x, i) => { if (i === 2) leaving.buffer.transfer(); return x + 1; }), {});
  const gone = new Uint8Array(8);
  gone.buffer.transfer();
  found["detached slice"] = tried(() => gone.slice(0, 2), gone);
  found["detached subarray"] = tried(() => gone.subarray(0, 2), gone);
  found["detached map"] = tried(() => gone.map((x) => x), gone);
  found["wrong receiver slice"] = tried(() => Uint8Array.prototype.slice.call({ constructor: Uint8Array, length: 3 }, 0, 1), {});
  found["wrong receiver subarray"] = tried(() => Uint8Array.prototype.subarray.call([1, 2, 3], 0, 1), {});
  found["wrong receiver map"] = tried(() => Uint8Array.prototype.map.call({ constructor: Uint8Array, length: 3, 0: 1 }, (x) => x), {});
  found["NaN bits kept"] = tried(() => { const f = new Float32Array(new Uint32Array([0x7fc00001, 0xffc00002]).buffer); return new Uint32Array(f.slice().buffer); }, {});
  found["species"] = (() => { try { Object.defineProperty(Uint8Array, Symbol.species, { value: Bytes, configurable: true }); delete Uint8Array[Symbol.species]; return "redefined"; } catch (error) { return error.constructor.name; } })();
  return found;
})()`;

test("slice, subarray and map make what the language makes, for every type and kind of argument", { timeout: 60_000 }, async () => {
  // In a context of its own: the cases redefine a species, and Node is the reference.
  const expected = runInNewContext(cases) as Record<string, unknown>;
  // The budget fixes each type's species (it cannot be redefined): the one answer that differs.
  expected.species = "TypeError";
  const task = taskFor(`export default () => ${cases};`, { taskId: "typed-array-fast", timeoutMs: 30_000 });
  const [found] = results(await runBatch(running.volunteer, task, chunksFor([0])));
  expect(found).toEqual(expected);
});

test("copies made by slice count against the budget: large ones at once, small ones kept", { timeout: 120_000 }, async () => {
  const found = await runWays(
    running.volunteer,
    "typed-array-fast",
    `{
      "large-slices": () => { const one = new Uint8Array(64 * MiB); return keep(16, () => touch(one.slice(0, 64 * MiB))); },
      "small-slices-kept-1GiB": () => { const one = new Uint32Array(4096); return keep(65536, () => touch(new Uint8Array(one.slice(0, 4096).buffer))); },
    }`,
    ["large-slices", "small-slices-kept-1GiB"],
  );
  expect(found).toEqual({ "large-slices": { kind: "oom", message: expect.any(String) }, "small-slices-kept-1GiB": { kind: "oom", message: expect.any(String) } });
});
