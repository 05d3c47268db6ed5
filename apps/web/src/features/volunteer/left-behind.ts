// What a page that went away still answered for, kept for the next page of this browser.
//
// A page going away gives its blocks back in a keepalive request, but Chromium does not send
// every keepalive request made while a page unloads (a reload lost about one in three in the
// browser tests). What the page wrote to storage in the same moment is never lost, so the next
// page of this browser with the same volunteer gives the blocks back as it starts
// (docs/architecture.md, "The volunteer page"). Releasing a block twice is harmless: the
// second answer names it unknown.

const key = "crowdcompute.volunteer.leftBehind";
/** Enough for what a page holds; an old entry beyond it is left to its lease's deadline. */
const maxLeaseIds = 1024;

export interface LeftBehind {
  leaseIds: string[];
  /** A lease request that was in flight: whatever it got goes back too. */
  leaseRequestKeys: string[];
}

interface Stored extends LeftBehind {
  volunteerId: string;
}

/** Adds what a page leaving now held to what earlier pages of this browser left behind. */
export function rememberLeftBehind(storage: Storage, volunteerId: string, left: { leaseIds: string[]; leaseRequestKey?: string }): void {
  const earlier = read(storage);
  const same = earlier?.volunteerId === volunteerId ? earlier : null;
  const stored: Stored = {
    volunteerId,
    leaseIds: [...new Set([...(same?.leaseIds ?? []), ...left.leaseIds])].slice(-maxLeaseIds),
    leaseRequestKeys: [...new Set([...(same?.leaseRequestKeys ?? []), ...(left.leaseRequestKey === undefined ? [] : [left.leaseRequestKey])])].slice(-32),
  };
  try {
    storage.setItem(key, JSON.stringify(stored));
  } catch {
    // Storage full or refused: the keepalive request is all there is.
  }
}

/** What earlier pages of this volunteer left behind, removed from storage; null when nothing. */
export function takeLeftBehind(storage: Storage, volunteerId: string): LeftBehind | null {
  const stored = read(storage);
  if (!stored) return null;
  storage.removeItem(key);
  if (stored.volunteerId !== volunteerId) return null;
  return { leaseIds: stored.leaseIds, leaseRequestKeys: stored.leaseRequestKeys };
}

function read(storage: Storage): Stored | null {
  try {
    const value = JSON.parse(storage.getItem(key) ?? "null") as Partial<Stored> | null;
    if (!value || typeof value.volunteerId !== "string" || !Array.isArray(value.leaseIds) || !Array.isArray(value.leaseRequestKeys)) return null;
    const strings = (list: unknown[]) => list.filter((item): item is string => typeof item === "string");
    return { volunteerId: value.volunteerId, leaseIds: strings(value.leaseIds), leaseRequestKeys: strings(value.leaseRequestKeys) };
  } catch {
    return null;
  }
}
