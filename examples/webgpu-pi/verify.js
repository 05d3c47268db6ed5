// Checks `crowdcompute results` of webgpu-pi in plain JS (the same PCG hash, exact
// integers) and prints the estimate of π.
// Usage: crowdcompute results ID | node examples/webgpu-pi/verify.js
import { createInterface } from "node:readline";

function pcg(v) {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

let samples = 0;
let inside = 0;
let wrong = 0;
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const { index, input, status, result } = JSON.parse(line);
  if (status !== "done") {
    console.error(`chunk ${index} failed`);
    wrong += 1;
    continue;
  }
  let expected = 0;
  for (let s = input.start; s < input.end; s++) {
    const x = pcg(2 * s) >>> 17;
    const y = pcg(2 * s + 1) >>> 17;
    if (x * x + y * y < 1073741824) expected += 1;
  }
  if (expected !== result.inside || result.samples !== input.end - input.start) {
    console.error(`chunk ${index}: expected ${expected} inside, the GPU said ${result.inside}`);
    wrong += 1;
  }
  samples += result.samples;
  inside += result.inside;
}
console.log(`${samples} samples, π ≈ ${((4 * inside) / samples).toFixed(6)}, ${wrong} chunks wrong`);
process.exit(wrong === 0 && samples > 0 ? 0 : 1);
