import { count, eq, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { newId } from "../ids.ts";
import { users, volunteers } from "../schema.ts";

export type UserRow = typeof users.$inferSelect;
export type VolunteerRow = typeof volunteers.$inferSelect;

/**
 * Creates a user, or returns null when the email is taken. With `firstIsAdmin`, the first
 * user ever created becomes admin: an advisory lock makes two racing first sign-ups agree.
 */
export async function createUser(db: Db, input: { email: string; passwordHash: string; adminEmail?: string; firstIsAdmin: boolean; displayName?: string | null }): Promise<UserRow | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(4242)`);
    let role: "admin" | "creator" = "creator";
    if (input.adminEmail && input.adminEmail.toLowerCase() === input.email.toLowerCase()) role = "admin";
    if (input.firstIsAdmin) {
      const [row] = await tx.select({ n: count() }).from(users);
      if ((row?.n ?? 0) === 0) role = "admin";
    }
    // Once an admin exists no registration makes another, in any mode (ADMIN_EMAIL on an
    // embedded install included): only an admin promotes. Checked under the same lock.
    if (role === "admin") {
      const [admin] = await tx.select({ id: users.id }).from(users).where(eq(users.role, "admin")).limit(1);
      if (admin) role = "creator";
    }
    const [created] = await tx
      .insert(users)
      .values({ id: newId(), email: input.email, passwordHash: input.passwordHash, role, displayName: input.displayName ?? null })
      .onConflictDoNothing()
      .returning();
    return created ?? null;
  });
}

export async function findUserByEmail(db: Db, email: string): Promise<UserRow | null> {
  const [row] = await db.select().from(users).where(eq(users.email, email));
  return row ?? null;
}

export async function findUserById(db: Db, id: string): Promise<UserRow | null> {
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row ?? null;
}

export async function createVolunteer(db: Db, input: { name: string; userId: string | null; trusted?: boolean }): Promise<VolunteerRow> {
  const [row] = await db
    .insert(volunteers)
    .values({ id: newId(), ...input })
    .returning();
  return row!;
}

/** Liveness: one round trip to the database. */
export async function pingDb(db: Db): Promise<void> {
  await queryRows(db, sql`SELECT 1`);
}

export interface VolunteerFigures {
  id: string;
  /** The name the volunteer chose. */
  name: string;
  /** The account it computes for, or null for an anonymous volunteer. */
  userId: string | null;
  /** Its name on the leaderboard: an account's display name when it has one (see `leaderboard`). */
  shownAs: string;
  chunksDone: number;
  cpuMs: number;
  credit: number;
}

/** What a volunteer may know of itself: its figures (never whether it is banned). */
export async function getVolunteerFigures(db: Db, id: string): Promise<VolunteerFigures | null> {
  const [row] = await queryRows<{
    id: string;
    name: string;
    user_id: string | null;
    display_name: string | null;
    done: number | null;
    cpu_ms: string | number | null;
    credit: string | number | null;
  }>(
    db,
    sql`SELECT v.id, v.name, v.user_id, u.display_name, vc.done, vc.cpu_ms, vc.credit FROM volunteers v
        LEFT JOIN users u ON u.id = v.user_id
        LEFT JOIN volunteer_counters vc ON vc.volunteer_id = v.id WHERE v.id = ${id}`,
  );
  if (!row) return null;
  return {
    id: row.id,
    name: row.name,
    userId: row.user_id,
    shownAs: row.display_name ?? row.name,
    chunksDone: row.done ?? 0,
    cpuMs: Number(row.cpu_ms ?? 0),
    credit: Number(row.credit ?? 0),
  };
}

/** Renames a volunteer; false when there is no such volunteer. */
export async function renameVolunteer(db: Db, id: string, name: string): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(db, sql`UPDATE volunteers SET name = ${name} WHERE id = ${id} RETURNING id`);
  return rows.length > 0;
}

export type VolunteerLink = "linked" | "already-linked" | "another-account" | "no-volunteer";

/**
 * Makes an anonymous volunteer one of `userId`'s (the browser that volunteered before its
 * person signed in): its chunks and credit count for the account from then on, on the
 * leaderboard too. A volunteer of another account stays where it is.
 */
export async function linkVolunteer(db: Db, volunteerId: string, userId: string): Promise<VolunteerLink> {
  const rows = await queryRows<{ user_id: string | null; linked: boolean }>(
    db,
    sql`WITH linked AS (UPDATE volunteers SET user_id = ${userId} WHERE id = ${volunteerId} AND user_id IS NULL RETURNING id)
        SELECT v.user_id, EXISTS (SELECT 1 FROM linked) AS linked FROM volunteers v WHERE v.id = ${volunteerId}`,
  );
  const row = rows[0];
  if (!row) return "no-volunteer";
  if (row.linked) return "linked";
  return row.user_id === userId ? "already-linked" : "another-account";
}

/** Sets the name volunteers and the leaderboard show for an account (never its email); false when there is no such user. */
export async function setDisplayName(db: Db, userId: string, name: string): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(db, sql`UPDATE users SET display_name = ${name} WHERE id = ${userId} RETURNING id`);
  return rows.length > 0;
}
