// Column types the tables share (schema.ts): Postgres types drizzle has no builder for, and
// the created_at every table carries.
import { customType, timestamp } from "drizzle-orm/pg-core";

export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});

/**
 * A 64-bit transaction id (Postgres `xid8`), read as decimal text: the order in which
 * following readers see final chunks (docs/architecture.md, Following results).
 */
export const xid8 = customType<{ data: string; driverData: string }>({
  dataType: () => "xid8",
});

/** A bit string, read and written in SQL only (`B'0101'`): the JS side never sees it. */
export const varbit = customType<{ data: string; driverData: string }>({
  dataType: () => "varbit",
});

export const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
