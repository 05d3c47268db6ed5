// Self-describing lease ids (DESIGN §5): base64url(lease row, task, index, copy, volunteer)
// plus an HMAC, so a late result needs no live row and a forged or foreign id is caught
// before any query.
const payloadBytes = 8 + 16 + 4 + 2 + 16;
const macBytes = 16;

export interface LeaseIdParts {
  leaseRowId: number;
  taskId: string;
  index: number;
  copy: number;
  volunteerId: string;
}

const uuidToBytes = (uuid: string, into: Uint8Array, at: number) => {
  const hex = uuid.replaceAll("-", "");
  for (let i = 0; i < 16; i++) into[at + i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
};

const bytesToUuid = (bytes: Uint8Array, at: number) => {
  const hex = Array.from(bytes.subarray(at, at + 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

const toBase64Url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return null;
  try {
    return Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

export function createLeaseIds(secret: string) {
  const keyPromise = crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(`lease-ids:${secret}`),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  const mac = async (payload: Uint8Array<ArrayBuffer>) =>
    new Uint8Array(await crypto.subtle.sign("HMAC", await keyPromise, payload)).subarray(0, macBytes);

  return {
    async encode(parts: LeaseIdParts): Promise<string> {
      const bytes = new Uint8Array(new ArrayBuffer(payloadBytes + macBytes));
      const view = new DataView(bytes.buffer);
      view.setBigUint64(0, BigInt(parts.leaseRowId));
      uuidToBytes(parts.taskId, bytes, 8);
      view.setUint32(24, parts.index);
      view.setUint16(28, parts.copy);
      uuidToBytes(parts.volunteerId, bytes, 30);
      bytes.set(await mac(bytes.subarray(0, payloadBytes)), payloadBytes);
      return toBase64Url(bytes);
    },
    /** The parts of a genuine lease id, or null for anything forged, truncated or altered. */
    async decode(leaseId: string): Promise<LeaseIdParts | null> {
      const bytes = fromBase64Url(leaseId);
      if (!bytes || bytes.length !== payloadBytes + macBytes) return null;
      const expected = await mac(bytes.subarray(0, payloadBytes));
      let diff = 0;
      for (let i = 0; i < macBytes; i++) diff |= expected[i]! ^ bytes[payloadBytes + i]!;
      if (diff !== 0) return null;
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      return {
        leaseRowId: Number(view.getBigUint64(0)),
        taskId: bytesToUuid(bytes, 8),
        index: view.getUint32(24),
        copy: view.getUint16(28),
        volunteerId: bytesToUuid(bytes, 30),
      };
    },
  };
}

export type LeaseIds = ReturnType<typeof createLeaseIds>;
