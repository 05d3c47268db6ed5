// The ways the page gives blocks back, so their chunks go to other volunteers now rather than
// at their deadline (docs/architecture.md, "The volunteer page"). Best effort: a block that
// could not be released simply expires, and releasing one twice is harmless.
import type { Client } from "@crowdcompute/sdk";
import { rememberLeftBehind, takeLeftBehind } from "./left-behind.ts";

/** Ids a release request carries at most (its body stays well under the API's bounds). */
const idsPerRequest = 256;

/** Releases `leaseIds`, 256 a request, ignoring failures. */
export async function releaseAll(client: Client, leaseIds: readonly string[]): Promise<void> {
  for (let first = 0; first < leaseIds.length; first += idsPerRequest) {
    await client.release(leaseIds.slice(first, first + idsPerRequest)).catch(() => {});
  }
}

/** Gives back what an earlier page of this browser held when it went (see left-behind.ts). */
export async function releaseLeftBehind(client: Client, storage: Storage, volunteerId: string | null): Promise<void> {
  const left = volunteerId ? takeLeftBehind(storage, volunteerId) : null;
  if (!left) return;
  await releaseAll(client, left.leaseIds);
  for (const leaseRequestKey of left.leaseRequestKeys) await client.release([], { leaseRequestKey }).catch(() => {});
}

/**
 * What a page going away held: written to storage for the next page of this browser, and sent
 * in a keepalive request, which Chromium does not always deliver while a page unloads.
 */
export function releaseOnUnload(client: Client | null, storage: Storage, volunteerId: string | null, leaseIds: readonly string[], leaseRequestKey: string | undefined): void {
  if (leaseIds.length === 0 && leaseRequestKey === undefined) return;
  const ofRequest = leaseRequestKey === undefined ? {} : { leaseRequestKey };
  if (volunteerId) rememberLeftBehind(storage, volunteerId, { leaseIds: [...leaseIds], ...ofRequest });
  // The browser keeps at most 64 KiB of keepalive bodies in flight: 256 ids fit with room.
  if (client) void client.release(leaseIds.slice(0, idsPerRequest), { keepalive: true, ...ofRequest }).catch(() => {});
}
