// Expired leases are taken back by lease requests themselves, with no daemon (docs/architecture.md,
// "Dispatch"): before a volunteer's request is leased, this process sweeps, at most once every
// 250 ms (the db's `sweepExpiredLeases`, which counts what it takes back on that volunteer's
// counter shard).
import { sweepExpiredLeases } from "@crowdcompute/db";
import type { AppContext } from "./context.ts";

/** Takes back expired leases (of any volunteer) ahead of `volunteerId`'s lease request. */
export function sweepBeforeLease(c: AppContext, volunteerId: string): Promise<void> {
  return sweepExpiredLeases(c.var.deps.db, volunteerId);
}
