// Checks `crowdcompute results` of the hash search with Node's own sha256: every hit is
// real, and no chunk missed one. Usage: crowdcompute results ID | node examples/hash-search/verify.js
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";

const prefix = "crowdcompute:";
let chunks = 0;
let hits = 0;
let bad = 0;
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const { index, input, status, result } = JSON.parse(line);
  chunks += 1;
  if (status !== "done") {
    console.error(`chunk ${index} failed`);
    bad += 1;
    continue;
  }
  const expected = [];
  for (let n = input.start; n < input.end; n += input.step) {
    const hash = createHash("sha256")
      .update(prefix + n)
      .digest("hex");
    if (hash.startsWith("0000")) expected.push({ nonce: n, hash });
  }
  // Compared hit by hit, not as JSON text: the server stores results as canonical JSON
  // (RFC 8785), whose keys are sorted, so a hit comes back as {hash, nonce}.
  const key = (hit) => `${hit.nonce}:${hit.hash}`;
  if (expected.map(key).join() !== result.hits.map(key).join()) {
    console.error(`chunk ${index}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(result.hits)}`);
    bad += 1;
  }
  hits += result.hits.length;
}
console.log(`${chunks} chunks checked, ${hits} hits, ${bad} wrong`);
process.exit(bad === 0 && chunks > 0 ? 0 : 1);
