// Longest Collatz chain in each range chunk, computed by the task's WebAssembly module
// (collatz.wat). Under 1,000,000 the winner is 837,799 with 524 steps.
export default function work(input, ctx) {
  if (!ctx.wasm) throw new Error("this task needs its WebAssembly module: submit it with --wasm collatz.wat");
  const { steps } = ctx.wasm.exports;
  let best = { n: input.start, steps: -1 };
  for (let n = input.start; n < input.end; n += input.step) {
    const count = steps(n);
    if (count > best.steps) best = { n, steps: count };
  }
  return best;
}
