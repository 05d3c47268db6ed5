// The bounds on what one volunteer holds (docs/architecture.md, "Bounds on what one volunteer
// holds"): what a volunteer and its source hold, read or estimated, the room left under each
// bound, a task's share, one request at a time per volunteer.
import type { Db } from "../db.ts";
import { dispatchCacheOf } from "./dispatch-cache.ts";
import { heldChunks } from "./held.ts";
import { leaseBlocks, leasesOfRequest, leaseUnclaimed, type Sharing } from "./lease.ts";
import type { GrantedBlock, LeaseBound, LeaseOutcome, LeaseRequest } from "./lease-types.ts";
import { claimRequestKey } from "./request-keys.ts";

/** Other volunteers that asked for work within this long share a task's open chunks with the asker. */
const sharingWindowMs = 10_000;
/** A volunteer's lease requests running or waiting in one process; more get nothing at once. */
const maxQueuedPerVolunteer = 4;
/** The same for all anonymous volunteers of one network source (a household or office behind one address). */
const maxQueuedPerSource = 64;

/**
 * `leaseBlocks` within `request.bounds` (docs/architecture.md, "Bounds on what one volunteer
 * holds"): the request's threads and buffer are clamped; a volunteer's requests run one at a
 * time in this process, each after reading what the volunteer (and, if anonymous, its source)
 * holds; it gets at most what is left under both bounds, and of each task at most its party's
 * share of the open chunks while other parties ask for work (`taskShare`). Beyond a bound the
 * answer has fewer blocks or none, and says which bound.
 */
export async function leaseWithinBounds(db: Db, request: LeaseRequest): Promise<LeaseOutcome> {
  const bounds = request.bounds;
  if (!bounds) return { blocks: await leaseBlocks(db, request), bounded: null };
  const dispatchCache = dispatchCacheOf(db);
  // A task is shared among parties: an anonymous network source (whatever identities it
  // mints) or an account's volunteer.
  const party = request.source == null ? `volunteer:${request.volunteerId}` : `source:${request.source}`;
  const others = dispatchCache.othersAsking(party, sharingWindowMs);
  const clamped: LeaseRequest = {
    ...request,
    threads: Math.max(1, Math.min(request.threads, bounds.maxThreads)),
    ...(request.bufferMs === undefined ? {} : { bufferMs: Math.min(request.bufferMs, bounds.maxBufferMs) }),
  };
  // A volunteer's requests run one at a time here; an anonymous source's too while other
  // parties ask for work (its share of a task is read, then taken). What a volunteer and a
  // source hold is known from the last read plus what this process granted and reserved since
  // (`DispatchCache.heldEstimate`): read again only when a request might pass a bound, or needs
  // its share. A source's volunteers reserve before they lease, so they cannot each see room.
  const source = clamped.source ?? null;
  const inTurn = (run: () => Promise<LeaseOutcome>) => () => (source === null || others === 0 ? run() : (dispatchCache.oneAtATime(`source:${source}`, maxQueuedPerSource, run) ?? busy()));
  const turn = dispatchCache.oneAtATime(
    request.volunteerId,
    maxQueuedPerVolunteer,
    inTurn(async (): Promise<LeaseOutcome> => {
      if (clamped.idempotencyKey && !clamped.keyClaimed && !(await claimRequestKey(db, clamped.volunteerId, clamped.idempotencyKey))) {
        return { blocks: await leasesOfRequest(db, clamped.volunteerId, clamped.idempotencyKey), bounded: null };
      }
      const mine = dispatchCache.heldEstimate(`volunteer:${clamped.volunteerId}`);
      const ours = source === null ? null : dispatchCache.heldEstimate(`source:${source}`);
      const roomOf = () => ({
        byVolunteer: bounds.perVolunteer - mine.known - mine.reserved,
        bySource: ours === null ? Number.POSITIVE_INFINITY : bounds.perSource - ours.known - ours.reserved,
      });
      let sharing: Sharing | null = null;
      let { byVolunteer, bySource } = roomOf();
      if (others > 0 || byVolunteer < clamped.max || bySource < clamped.max) {
        const held = await heldChunks(db, { volunteerId: clamped.volunteerId, source });
        mine.known = held.volunteer;
        if (ours) ours.known = held.source;
        if (others > 0) sharing = { others, heldByTask: source === null ? held.byTask : held.sourceByTask };
        ({ byVolunteer, bySource } = roomOf());
      }
      const room = Math.min(byVolunteer, bySource);
      const bound: LeaseBound = bySource < byVolunteer ? "source" : "volunteer";
      if (room <= 0) return { blocks: [], bounded: bound };
      const max = Math.min(clamped.max, room);
      mine.reserved += max;
      if (ours) ours.reserved += max;
      let blocks: GrantedBlock[] = [];
      try {
        blocks = await leaseUnclaimed(db, { ...clamped, max, heldAhead: mine.known }, sharing);
      } finally {
        const got = blocks.reduce((n, block) => n + block.n, 0);
        mine.reserved -= max;
        mine.known += got;
        if (ours) {
          ours.reserved -= max;
          ours.known += got;
        }
      }
      const got = blocks.reduce((n, block) => n + block.n, 0);
      return { blocks, bounded: max < clamped.max && got >= max ? bound : null };
    }),
  );
  return (await turn) ?? busy();
}

const busy = async (): Promise<LeaseOutcome> => ({ blocks: [], bounded: "busy" });
