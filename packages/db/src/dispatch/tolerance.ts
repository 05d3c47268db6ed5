// Agreement within a tolerance (docs/architecture.md, "Replication, trust and reduce"):
// server-side only, over the copies' JSON text; no creator code runs on the server.

export interface Tolerance {
  abs?: number;
  rel?: number;
}

/** Nested deeper than this, two copies disagree rather than risk the stack (results are bounded far below). */
const maxDepth = 256;

/**
 * Whether two results agree: the same JSON shape (arrays of the same length, objects with the
 * same keys, in any order), the same strings, booleans and nulls, and every pair of numbers
 * equal, within `abs` of each other, or within `rel` of the larger magnitude. Null against a
 * number disagrees. Infinity (a JSON number past the float range, say 1e400) agrees only with
 * itself; NaN cannot be written in JSON (a worker's NaN arrives as null).
 */
export function agreeWithin(a: unknown, b: unknown, tolerance: Tolerance, depth = 0): boolean {
  if (typeof a === "number" && typeof b === "number") return numbersAgree(a, b, tolerance);
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  if (depth >= maxDepth) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!agreeWithin(a[i], b[i], tolerance, depth + 1)) return false;
    return true;
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(right, key) || !agreeWithin(left[key], right[key], tolerance, depth + 1)) return false;
  }
  return true;
}

function numbersAgree(a: number, b: number, tolerance: Tolerance): boolean {
  if (a === b) return true; // 0 and -0 too, and equal infinities
  const diff = Math.abs(a - b);
  if (!Number.isFinite(diff)) return false; // an infinity against anything else
  if (tolerance.abs !== undefined && diff <= tolerance.abs) return true;
  return tolerance.rel !== undefined && diff <= tolerance.rel * Math.max(Math.abs(a), Math.abs(b));
}

/** A copy's result as stored (JSON text); text that does not parse agrees with nothing but equal text. */
function parseResult(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

export interface ToleranceVote {
  volunteer_id: string;
  result: string;
  trusted: boolean;
  /** The sha256 of the vote's own result text. */
  own_hash: string;
}

/**
 * Sides of one chunk's votes under a tolerance: votes in order (trusted first, then by arrival,
 * as the caller sorts them) each join the first side whose first vote they agree with, or
 * start a side of their own. A side is named by its first vote's own hash, so a side with a
 * trusted vote is led by its first trusted copy, whose value wins. Returns the hash each vote
 * should carry.
 */
export function sidesWithin(votes: readonly ToleranceVote[], tolerance: Tolerance): Map<string, string> {
  const leaders: { hash: string; text: string; value: { ok: true; value: unknown } | { ok: false } }[] = [];
  const sideOf = new Map<string, string>();
  for (const vote of votes) {
    const value = parseResult(vote.result);
    const leader = leaders.find((l) => (l.value.ok && value.ok ? agreeWithin(l.value.value, value.value, tolerance) : l.text === vote.result));
    if (leader) sideOf.set(vote.volunteer_id, leader.hash);
    else {
      leaders.push({ hash: vote.own_hash, text: vote.result, value });
      sideOf.set(vote.volunteer_id, vote.own_hash);
    }
  }
  return sideOf;
}
