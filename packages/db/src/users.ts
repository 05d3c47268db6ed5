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
  input: { email: string; passwordHash: string; adminEmail?: string; firstIsAdmin: boolean },
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
      .values({ id: newId(), email: input.email, passwordHash: input.passwordHash, role })
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
