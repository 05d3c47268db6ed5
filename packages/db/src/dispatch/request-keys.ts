// Lease requests' Idempotency-Keys (`lease_requests`), claimed by a lease request or by the
// release of one (docs/architecture.md, Dispatch). Bounded per volunteer: a volunteer keeps
// its `keptPerVolunteer` newest keys, so a loop of requests or releases with fresh keys leaves
// at most that many rows (each otherwise lived a day, swept by expire.ts).
import { sql } from "drizzle-orm";
import { type Db, preparedRows } from "../db.ts";

/** Keys a volunteer keeps: a repeat is only ever of its last few requests. */
export const keptPerVolunteer = 32;

/**
 * True when this is the first request with the key (it leases); false for a repeat. Drops the
 * volunteer's keys beyond its newest `keptPerVolunteer` in the same statement (the volunteer's
 * rows, by its primary key prefix).
 */
export async function claimRequestKey(db: Db, volunteerId: string, key: string): Promise<boolean> {
  const rows = await preparedRows<{ claimed: number }>(
    db,
    sql`WITH trimmed AS (
          DELETE FROM lease_requests WHERE volunteer_id = ${volunteerId} AND key IN (
            SELECT key FROM lease_requests WHERE volunteer_id = ${volunteerId} AND key <> ${key}
            ORDER BY created_at DESC, key OFFSET ${keptPerVolunteer - 1}::int)
        )
        INSERT INTO lease_requests (volunteer_id, key) VALUES (${volunteerId}, ${key})
        ON CONFLICT (volunteer_id, key) DO NOTHING RETURNING 1 AS claimed`,
  );
  return rows.length > 0;
}
