/** The template the new-task editor starts with. */
export const exampleCode = `// Called once per chunk with that chunk's input; return any JSON value.
// ctx.index: the chunk's index; ctx.progress(fraction, message?): report progress;
// ctx.wasm: your .wasm module's instance (if uploaded); ctx.signal: aborted on cancel/timeout.
export default async function work(input, ctx) {
  // Count the primes in [input.start, input.end) — with a range, each chunk gets a slice.
  const { start, end } = typeof input === "number" ? { start: 0, end: input } : input;
  let count = 0;
  for (let n = Math.max(2, start); n < end; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) { prime = false; break; }
    }
    if (prime) count++;
  }
  return { start, end, primes: count };
}

// Optional: turn all results (in index order) into one aggregate.
export function reduce(results) {
  return results.reduce((sum, r) => sum + (r.primes ?? r), 0);
}
`;
