// A lease's `reported` column is a bit string of n bits, leftmost = offset 0: the chunks
// of the block already reported (a result or an error). These fragments build and test it.
import { type SQL, sql } from "drizzle-orm";

/** n zero bits: what a lease statement writes for a fresh lease of n chunks. */
export const noneReported = (n: SQL): SQL => sql`repeat('0', (${n})::int)::varbit`;

/** n bits with [offset, offset + count) set, to OR into a lease of n chunks. */
export const runMask = (n: SQL, offset: SQL, count: SQL): SQL =>
  sql`(repeat('0', (${offset})::int) || repeat('1', (${count})::int) || repeat('0', (${n})::int - (${offset})::int - (${count})::int))::varbit`;

/** SQL boolean: none of the `count` bits from `offset` of `mask` is set. */
export const noneSetIn = (mask: SQL, offset: SQL, count: SQL): SQL => sql`position(B'1' in substring(${mask} from (${offset})::int + 1 for (${count})::int)) = 0`;

/** SQL boolean: offset `offset` of `mask` is set. */
export const isSet = (mask: SQL, offset: SQL): SQL => sql`get_bit(${mask}, (${offset})::int) = 1`;

/** SQL boolean: some bit of `mask` is still clear (the lease holds an unreported chunk). */
export const someClear = (mask: SQL): SQL => sql`position(B'0' in ${mask}) > 0`;
