// Hash search: which nonces n make sha256("crowdcompute:" + n) start with four zero hex
// digits (about 1 in 65,536)? A range task: each chunk gets { start, end, step }.
// Uses an npm library (@noble/hashes); `crowdcompute submit` bundles it into the task.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

const prefix = "crowdcompute:";

export default async function work(input, ctx) {
  const hits = [];
  const total = Math.ceil((input.end - input.start) / input.step);
  let done = 0;
  for (let n = input.start; n < input.end; n += input.step) {
    const digest = sha256(utf8ToBytes(prefix + n));
    // Four zero hex digits: the first two bytes are zero.
    if (digest[0] === 0 && digest[1] === 0) hits.push({ nonce: n, hash: bytesToHex(digest) });
    if (++done % 10_000 === 0) ctx.progress(done / total);
  }
  return { hashed: done, hits };
}
