// Kernels of bench/sandbox.bench.ts that allocate as real code does, as one work-code module:
// the bench bundles this file with the SDK's bundler (what `crowdcompute submit` does), so the
// very same bundle runs in Node, in a plain module Worker in Chromium and in the sandbox.
// `{ kernel, n }` runs one kernel `n` times round; returns `{ value, ms }`, timed inside.
import { parse } from "acorn";
// The hash-search example itself: sha256 from @noble/hashes over a range of nonces.
// @ts-expect-error: the example is plain JavaScript, without types
import hashSearch from "../examples/hash-search/work.js";

const quiet = { progress() {} };

/** `new Uint8Array(32)`, `new ArrayBuffer(64)` + a DataView, `subarray` and `slice`, as binary-data code makes them. */
function typedArrays(n: number): number {
  let sum = 0;
  const big = new Uint8Array(4096);
  for (let i = 0; i < n; i++) {
    const bytes = new Uint8Array(32);
    bytes[i & 31] = i;
    const view = new DataView(new ArrayBuffer(64));
    view.setUint32(i & 60, i, true);
    view.setFloat64(8, i / 3);
    sum += bytes[i & 31]! + view.getUint32(i & 60, true) + (view.getFloat64(8) > 0 ? 1 : 0);
    sum += big.subarray(i & 1023, (i & 1023) + 64).length + bytes.slice(0, 16).length;
  }
  return sum;
}

function textEncoder(n: number): number {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const bytes = encoder.encode(`crowdcompute:${i}:ünïcödé`);
    sum += bytes.length + (i % 16 === 0 ? decoder.decode(bytes).length : 0);
  }
  return sum;
}

function json(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const record = { id: i, name: `volunteer-${i}`, tags: ["a", "b", String(i % 7)], scores: [i, i / 2, i / 3], nested: { ok: i % 2 === 0, at: "2026-12-07T00:00:00Z" } };
    const text = JSON.stringify(record);
    sum += text.length + (JSON.parse(text) as typeof record).scores.length;
  }
  return sum;
}

/** A few hundred lines of ordinary JavaScript, parsed by acorn `n` times. */
const program = Array.from(
  { length: 60 },
  (_, i) => `export async function task${i}(input, ctx) {
  const hits = [];
  for (let n = input.start; n < input.end; n += input.step) {
    const value = { n, square: n * n, label: \`item \${n}\`, flags: [n % 2 === 0, n % 3 === 0] };
    if (value.square % ${i + 7} === 0) hits.push(value);
  }
  return { hits, total: hits.reduce((sum, hit) => sum + hit.n, 0), ok: hits.length > 0 ? "yes" : null };
}`,
).join("\n");

function acorn(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (parse(program, { ecmaVersion: "latest", sourceType: "module", locations: true }) as unknown as { body: unknown[] }).body.length;
  return sum;
}

export default async function work(input: { kernel: string; n: number }): Promise<{ value: unknown; ms: number }> {
  const started = performance.now();
  let value: unknown;
  switch (input.kernel) {
    case "hash-search": {
      const { hashed, hits } = await hashSearch({ start: 0, end: input.n, step: 1 }, quiet);
      value = { hashed, hits: hits.length };
      break;
    }
    case "typed-arrays":
      value = typedArrays(input.n);
      break;
    case "text-encoder":
      value = textEncoder(input.n);
      break;
    case "json":
      value = json(input.n);
      break;
    case "acorn":
      value = acorn(input.n);
      break;
    default:
      throw new Error(`no kernel ${input.kernel}`);
  }
  return { value, ms: performance.now() - started };
}
