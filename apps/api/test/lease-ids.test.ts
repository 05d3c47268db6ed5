// Lease ids signed by one runtime's HMAC are read by another's: Node processes (node:crypto)
// and Workers isolates (WebCrypto) may serve one database side by side.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLeaseIds } from "../src/lib/lease-ids.ts";

const secret = "lease-ids-test-secret-lease-ids-test";
const block = { leaseRowId: 123456789, taskId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", volunteerId: "0193a1b2-c3d4-7e5f-8a9b-ffffffffffff", copy: 1, firstIdx: 640, n: 64 };
const nodeHmac = (key: Uint8Array, data: Uint8Array) => createHmac("sha256", key).update(data).digest();

describe("lease ids", () => {
  it("are the same bytes whichever HMAC signs them, and each side reads the other's", async () => {
    const web = createLeaseIds(secret);
    const node = createLeaseIds(secret, nodeHmac);
    const signed = await web.encodeBlock(block);
    expect(await node.encodeBlock(block)).toBe(signed);
    expect(await node.decoder()(web.chunkId(signed, 700))).toEqual({ ...block, index: 700 });
    expect(await web.decoder()(node.chunkId(signed, 640))).toEqual({ ...block, index: 640 });
  });

  it("refuses an index outside the block, another secret's signature and a flipped byte", async () => {
    const node = createLeaseIds(secret, nodeHmac);
    const signed = await node.encodeBlock(block);
    expect(await node.decoder()(node.chunkId(signed, 704))).toBeNull();
    expect(await createLeaseIds(`${secret}-other`, nodeHmac).decoder()(node.chunkId(signed, 650))).toBeNull();
    const flipped = signed.slice(0, 5) + (signed[5] === "A" ? "B" : "A") + signed.slice(6);
    expect(await node.decoder()(node.chunkId(flipped, 650))).toBeNull();
  });
});
