// Self-describing lease ids: a signed block — base64url(lease row, task, volunteer, copy,
// first index, count, replicated) plus an HMAC. A volunteer reports a block's chunks by offset under
// it, so a late result needs no live row, and a forged, altered or foreign id is caught
// before any query (docs/architecture.md, "Dispatch").
//
// Why one MAC per block and not per chunk: with a WebCrypto HMAC per chunk, signing and
// verifying took 34 % of the API's CPU in bench/dispatch.bench.ts (64-chunk leases).
import { fromBase64Url, type HmacSha256, macWith, sameBytes, toBase64Url } from "./hmac.ts";

const payloadBytes = 8 + 16 + 16 + 2 + 4 + 2 + 1;
const macBytes = 16;

/** What a signed lease id carries: the block it names (the db's `GrantedBlock` is the block as leased). */
export interface SignedBlock {
  leaseRowId: number;
  taskId: string;
  volunteerId: string;
  copy: number;
  firstIdx: number;
  n: number;
  /** The task runs more than one copy of each chunk: its results are compared by their canonical JSON. */
  replicated: boolean;
  /** Replicated with a spotCheck under 1: a trusted first copy may be accepted alone (ids made before say false). */
  spotChecked?: boolean;
}

const uuidToBytes = (uuid: string, into: Uint8Array, at: number) => {
  const hex = uuid.replaceAll("-", "");
  for (let i = 0; i < 16; i++) into[at + i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
};

const bytesToUuid = (bytes: Uint8Array, at: number) => {
  const hex = Array.from(bytes.subarray(at, at + 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/** `hmac`: a runtime's faster HMAC (lib/hmac.ts); default WebCrypto's. */
export function createLeaseIds(secret: string, hmac?: HmacSha256) {
  const sign = macWith(new TextEncoder().encode(`lease-ids:${secret}`), hmac);
  const mac = async (payload: Uint8Array<ArrayBuffer>) => (await sign(payload)).subarray(0, macBytes);

  async function verifyBlock(block: string): Promise<SignedBlock | null> {
    const bytes = fromBase64Url(block);
    if (!bytes || bytes.length !== payloadBytes + macBytes) return null;
    // One spelling per id: 64 bytes leave 4 spare bits in the last character, which a decoder
    // ignores, so another string would pass for the same lease.
    if (toBase64Url(bytes) !== block) return null;
    if (!sameBytes(await mac(bytes.subarray(0, payloadBytes)), bytes.subarray(payloadBytes))) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    return {
      leaseRowId: Number(view.getBigUint64(0)),
      taskId: bytesToUuid(bytes, 8),
      volunteerId: bytesToUuid(bytes, 24),
      copy: view.getUint16(40),
      firstIdx: view.getUint32(42),
      n: view.getUint16(46),
      replicated: bytes[48] === 1 || bytes[48] === 2,
      spotChecked: bytes[48] === 2,
    };
  }

  return {
    /** The block's lease id. */
    async encodeBlock(block: SignedBlock): Promise<string> {
      const bytes = new Uint8Array(new ArrayBuffer(payloadBytes + macBytes));
      const view = new DataView(bytes.buffer);
      view.setBigUint64(0, BigInt(block.leaseRowId));
      uuidToBytes(block.taskId, bytes, 8);
      uuidToBytes(block.volunteerId, bytes, 24);
      view.setUint16(40, block.copy);
      view.setUint32(42, block.firstIdx);
      view.setUint16(46, block.n);
      bytes[48] = block.replicated ? (block.spotChecked ? 2 : 1) : 0;
      bytes.set(await mac(bytes.subarray(0, payloadBytes)), payloadBytes);
      return toBase64Url(bytes);
    },
    /**
     * A decoder that verifies each id once, however often a request names it (a block
     * reported in parts). Null for anything forged, altered or truncated.
     */
    decoder() {
      const verified = new Map<string, Promise<SignedBlock | null>>();
      return (leaseId: string): Promise<SignedBlock | null> => {
        let pending = verified.get(leaseId);
        if (!pending) {
          pending = verifyBlock(leaseId);
          verified.set(leaseId, pending);
        }
        return pending;
      };
    },
  };
}

export type LeaseIds = ReturnType<typeof createLeaseIds>;
