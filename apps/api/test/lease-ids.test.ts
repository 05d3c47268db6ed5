// Lease ids signed by one runtime's HMAC are read by another's: Node processes (node:crypto)
// and Workers isolates (WebCrypto) may serve one database side by side.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLeaseIds } from "../src/lib/lease-ids.ts";

const secret = "lease-ids-test-secret-lease-ids-test";
const block = {
  leaseRowId: 123456789,
  taskId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  volunteerId: "0193a1b2-c3d4-7e5f-8a9b-ffffffffffff",
  copy: 1,
  firstIdx: 640,
  n: 64,
  replicated: true,
  spotChecked: false,
};
const nodeHmac = (key: Uint8Array, data: Uint8Array) => createHmac("sha256", key).update(data).digest();

describe("lease ids", () => {
  it("are the same bytes whichever HMAC signs them, and each side reads the other's", async () => {
    const web = createLeaseIds(secret);
    const node = createLeaseIds(secret, nodeHmac);
    const signed = await web.encodeBlock(block);
    expect(await node.encodeBlock(block)).toBe(signed);
    expect(await node.decoder()(signed)).toEqual(block);
    expect(await web.decoder()(signed)).toEqual(block);
  });

  it("say whether the task is replicated, and spot-checked (a trusted first copy may stand alone)", async () => {
    const node = createLeaseIds(secret, nodeHmac);
    for (const kind of [
      { replicated: false, spotChecked: false },
      { replicated: true, spotChecked: false },
      { replicated: true, spotChecked: true },
    ]) {
      expect(await node.decoder()(await node.encodeBlock({ ...block, ...kind }))).toEqual({ ...block, ...kind });
    }
  });

  it("refuses another secret's signature, a flipped byte, a truncated id and an old per-chunk id", async () => {
    const node = createLeaseIds(secret, nodeHmac);
    const signed = await node.encodeBlock(block);
    expect(await createLeaseIds(`${secret}-other`, nodeHmac).decoder()(signed)).toBeNull();
    const flipped = signed.slice(0, 5) + (signed[5] === "A" ? "B" : "A") + signed.slice(6);
    expect(await node.decoder()(flipped)).toBeNull();
    expect(await node.decoder()(signed.slice(0, -2))).toBeNull();
    expect(await node.decoder()(`${signed}.jk`)).toBeNull();
  });

  it("refuses an id whose last character was changed (65 bytes = 87 base64url characters: the last one carries 2 spare bits)", async () => {
    const node = createLeaseIds(secret, nodeHmac);
    const signed = await node.encodeBlock(block);
    expect(signed).toHaveLength(87);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // Same top 2 bits, other spare bits: a different string that decodes to the same bytes.
    const altered = signed.slice(0, -1) + alphabet[alphabet.indexOf(signed.at(-1)!) ^ 1];
    expect(altered).not.toBe(signed);
    expect(await node.decoder()(altered)).toBeNull();
  });
});
