import { count, eq, sql } from "drizzle-orm";
import { queryRows, type Db } from "./db.ts";
import { newId } from "./ids.ts";
import { users, volunteers } from "./schema.ts";

export type UserRow = typeof users.$inferSelect;
export type VolunteerRow = typeof volunteers.$inferSelect;

/**
 * Creates a user, or returns null when the email is taken. With `firstIsAdmin`, the first
 * user ever created becomes admin: an advisory lock makes two racing first sign-ups agree.
 */
export async function createUser(
  db: Db,
  input: { email: string; passwordHash: string; adminEmail?: string; firstIsAdmin: boolean; displayName?: string | null },
): Promise<UserRow | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(4242)`);
    let role: "admin" | "creator" = "creator";
    if (input.adminEmail && input.adminEmail.toLowerCase() === input.email.toLowerCase()) role = "admin";
    if (input.firstIsAdmin) {
      const [row] = await tx.select({ n: count() }).from(users);
      if ((row?.n ?? 0) === 0) role = "admin";
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
  const [row] = await db.insert(volunteers).values({ id: newId(), ...input }).returning();
  return row!;
}

export async function findVolunteer(db: Db, id: string): Promise<VolunteerRow | null> {
  const [row] = await db.select().from(volunteers).where(eq(volunteers.id, id));
  return row ?? null;
}

/** Liveness: one round trip to the database. */
export async function pingDb(db: Db): Promise<void> {
  await queryRows(db, sql`SELECT 1`);
}

/** What a volunteer may know of itself: its figures (never whether it is banned). */
export async function getVolunteerFigures(
  db: Db,
  id: string,
): Promise<{ id: string; name: string; chunksDone: number; cpuMs: number; credit: number } | null> {
  const [row] = await queryRows<{ id: string; name: string; done: number | null; cpu_ms: string | number | null; credit: string | number | null }>(
    db,
    sql`SELECT v.id, v.name, vc.done, vc.cpu_ms, vc.credit FROM volunteers v
        LEFT JOIN volunteer_counters vc ON vc.volunteer_id = v.id WHERE v.id = ${id}`,
  );
  if (!row) return null;
  return { id: row.id, name: row.name, chunksDone: row.done ?? 0, cpuMs: Number(row.cpu_ms ?? 0), credit: Number(row.credit ?? 0) };
}
