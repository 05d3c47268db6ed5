import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";

export interface RateLimitState {
  hits: number;
  /** Milliseconds until the window (and so the count) resets. */
  resetInMs: number;
}

/**
 * Counts one hit against `key` in a fixed window of `windowMs` and returns the count so far,
 * in one upsert, so every API process and Workers isolate shares the same counters.
 */
export async function hitRateLimit(db: Db, key: string, windowMs: number): Promise<RateLimitState> {
  const [row] = await queryRows<{ hits: number; reset_ms: number | string }>(
    db,
    sql`INSERT INTO rate_limits AS r (key, window_start, hits) VALUES (${key}, now(), 1)
        ON CONFLICT (key) DO UPDATE SET
          hits = CASE WHEN r.window_start <= now() - make_interval(secs => ${windowMs / 1000}) THEN 1 ELSE r.hits + 1 END,
          window_start = CASE WHEN r.window_start <= now() - make_interval(secs => ${windowMs / 1000}) THEN now() ELSE r.window_start END
        RETURNING hits, greatest(0, extract(epoch FROM r.window_start + make_interval(secs => ${windowMs / 1000}) - now()) * 1000) AS reset_ms`,
  );
  // Old windows are dead weight: now and then, sweep them (a bounded delete, by chance 1 in 100).
  if (Math.random() < 0.01) {
    await db.execute(sql`DELETE FROM rate_limits WHERE key IN (
      SELECT key FROM rate_limits WHERE window_start < now() - interval '1 day' LIMIT 1000)`);
  }
  return { hits: row!.hits, resetInMs: Math.ceil(Number(row!.reset_ms)) };
}

/** The current counts of `keys` without counting a hit; absent or expired windows count 0. */
export async function peekRateLimits(db: Db, keys: string[], windowMs: number): Promise<Map<string, RateLimitState>> {
  const rows = await queryRows<{ key: string; hits: number; reset_ms: number | string }>(
    db,
    sql`SELECT key, hits, extract(epoch FROM window_start + make_interval(secs => ${windowMs / 1000}) - now()) * 1000 AS reset_ms
        FROM rate_limits WHERE key IN ${keys} AND window_start > now() - make_interval(secs => ${windowMs / 1000})`,
  );
  return new Map(rows.map((row) => [row.key, { hits: row.hits, resetInMs: Math.ceil(Number(row.reset_ms)) }]));
}

/**
 * Takes back one hit counted against `key` in its current window (never below 0): for a
 * limit counted before the work it guards and meant only for failures, e.g. a sign-in whose
 * password turned out right.
 */
export async function refundRateLimit(db: Db, key: string, windowMs: number): Promise<void> {
  await db.execute(sql`UPDATE rate_limits SET hits = greatest(hits - 1, 0)
    WHERE key = ${key} AND window_start > now() - make_interval(secs => ${windowMs / 1000})`);
}
