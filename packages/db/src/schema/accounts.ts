// The accounts' tables (docs/architecture.md, "The database"): creators and admins, volunteers
// and their trust, API keys, rate limits, and each volunteer's counters.
import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { createdAt } from "./columns.ts";

export const users = pgTable("users", {
  id: uuid("id").primaryKey(),
  email: text("email").notNull().unique(),
  /** Shown to volunteers as the creator of a task; never the email. */
  displayName: text("display_name"),
  passwordHash: text("password_hash").notNull(),
  role: text("role").$type<"admin" | "creator">().notNull(),
  createdAt: createdAt(),
  /** Null until an admin approves the account; only consulted with REQUIRE_CREATOR_APPROVAL. */
  approvedAt: timestamp("approved_at", { withTimezone: true }),
  /** Set while an admin has suspended the account: it can do nothing, its tasks are paused. */
  suspendedAt: timestamp("suspended_at", { withTimezone: true }),
});

export const volunteers = pgTable("volunteers", {
  id: uuid("id").primaryKey(),
  userId: uuid("user_id").references(() => users.id, { onDelete: "set null" }),
  name: text("name").notNull(),
  /** Trusted volunteers' votes can carry a quorum alone; new ones start on probation (docs/architecture.md, "Replication, trust and reduce"). */
  trusted: boolean("trusted").notNull().default(false),
  /** Results of this volunteer that won a quorum. */
  wins: integer("wins").notNull().default(0),
  /** Wins shared with a vote of another vouching volunteer (an admin's or one that earned trust; never an owner's own). */
  vouchedWins: integer("vouched_wins").notNull().default(0),
  /** Up to 3 distinct vouching volunteers its wins were shared with (docs/architecture.md, "Replication, trust and reduce"). */
  vouchers: uuid("vouchers").array().notNull().default(sql`'{}'::uuid[]`),
  /** Its results that lost to a winning side with a vouching vote in it. */
  losses: integer("losses").notNull().default(0),
  /** Too many losses: its results no longer count (it is not told). */
  banned: boolean("banned").notNull().default(false),
  createdAt: createdAt(),
});

/** Creators' API keys: only the sha256 of the key is kept; the key is shown once. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** The key's first characters, so a creator can tell keys apart. */
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    createdAt: createdAt(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("api_keys_user_idx").on(t.userId, t.createdAt)],
);

/**
 * Fixed-window counters for abuse limits (login attempts, sign-ups), shared by every API
 * process and Workers isolate: one row per key, reset when its window has passed.
 */
export const rateLimits = pgTable("rate_limits", {
  key: text("key").primaryKey(),
  windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
  hits: integer("hits").notNull(),
});

/**
 * Chunks done and CPU time per volunteer, for the leaderboard. Kept by a statement-level
 * trigger on `results` (migration 0001) that sees only the rows an INSERT really added, so
 * a duplicate submission moves nothing; one row per volunteer, so no row is shared.
 */
export const volunteerCounters = pgTable("volunteer_counters", {
  volunteerId: uuid("volunteer_id").primaryKey(),
  done: integer("done").notNull().default(0),
  cpuMs: bigint("cpu_ms", { mode: "number" }).notNull().default(0),
  /** Credit for results that won their quorum, in ms (kept by the submit path, not the trigger). */
  credit: bigint("credit", { mode: "number" }).notNull().default(0),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});
