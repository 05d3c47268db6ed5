import { and, desc, eq, isNotNull, isNull, lt, type SQL, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { users } from "../schema.ts";

export type AccountStatus = "active" | "pending" | "suspended";

export interface AccountState {
  role: "admin" | "creator";
  approved: boolean;
  suspended: boolean;
}

/** What authorization needs to know of an account on each request; null when it is gone. */
export async function getAccountState(db: Db, userId: string): Promise<AccountState | null> {
  const [row] = await db.select({ role: users.role, approvedAt: users.approvedAt, suspendedAt: users.suspendedAt }).from(users).where(eq(users.id, userId));
  return row ? { role: row.role, approved: row.approvedAt !== null, suspended: row.suspendedAt !== null } : null;
}

/** Marks an account approved (once); false when there is no such account. */
export async function approveUser(db: Db, userId: string): Promise<boolean> {
  const rows = await db
    .update(users)
    .set({ approvedAt: sql`coalesce(${users.approvedAt}, now())` })
    .where(eq(users.id, userId))
    .returning({ id: users.id });
  return rows.length > 0;
}

/**
 * Suspends a creator: the account can do nothing, and its running tasks are paused in the
 * same transaction, so no volunteer is served them. Admins cannot be suspended. Returns the
 * paused tasks' ids, or null when there is no such creator.
 */
export async function suspendUser(db: Db, userId: string): Promise<string[] | null> {
  return db.transaction(async (tx) => {
    const suspended = await tx
      .update(users)
      .set({ suspendedAt: sql`coalesce(${users.suspendedAt}, now())` })
      .where(and(eq(users.id, userId), eq(users.role, "creator")))
      .returning({ id: users.id });
    if (suspended.length === 0) return null;
    const paused = await queryRows<{ id: string }>(tx as unknown as Db, sql`UPDATE tasks SET status = 'paused' WHERE owner_id = ${userId} AND status = 'running' RETURNING id`);
    return paused.map((row) => row.id);
  });
}

/** Lifts a suspension (paused tasks stay paused: the creator resumes them). */
export async function unsuspendUser(db: Db, userId: string): Promise<boolean> {
  const rows = await db.update(users).set({ suspendedAt: null }).where(eq(users.id, userId)).returning({ id: users.id });
  return rows.length > 0;
}

export interface AccountRow {
  id: string;
  email: string;
  role: "admin" | "creator";
  createdAt: Date;
  approvedAt: Date | null;
  suspendedAt: Date | null;
}

/** Accounts, newest first, optionally only pending (unapproved) or suspended ones. */
export async function listAccounts(db: Db, options: { status: "pending" | "suspended" | null; before: string | null; limit: number }): Promise<AccountRow[]> {
  const filters: SQL[] = [];
  if (options.status === "pending") filters.push(isNull(users.approvedAt), eq(users.role, "creator"));
  if (options.status === "suspended") filters.push(isNotNull(users.suspendedAt));
  if (options.before) filters.push(lt(users.id, options.before));
  return db
    .select({
      id: users.id,
      email: users.email,
      role: users.role,
      createdAt: users.createdAt,
      approvedAt: users.approvedAt,
      suspendedAt: users.suspendedAt,
    })
    .from(users)
    .where(filters.length > 0 ? and(...filters) : undefined)
    .orderBy(desc(users.id))
    .limit(options.limit);
}

export interface MinterState {
  /** The account a volunteer belongs to: null when the token names none. */
  user: "active" | "suspended" | "gone" | null;
  /** Whether the API key a token was minted with is still live: null when it names none. */
  keyLive: boolean | null;
}

/**
 * What a volunteer token (or stream ticket) depends on beyond its signature: the account it
 * belongs to, and the API key it was minted with. One round trip for both.
 */
export async function getMinterState(db: Db, input: { userId: string | null; apiKeyId: string | null }): Promise<MinterState> {
  const [row] = await queryRows<{ suspended: boolean | null; key_live: boolean | null }>(
    db,
    sql`SELECT (SELECT suspended_at IS NOT NULL FROM users WHERE id = ${input.userId}::uuid) AS suspended,
               (SELECT revoked_at IS NULL FROM api_keys WHERE id = ${input.apiKeyId}::uuid) AS key_live`,
  );
  const user = input.userId === null ? null : row?.suspended === null || row?.suspended === undefined ? "gone" : row.suspended ? "suspended" : "active";
  const keyLive = input.apiKeyId === null ? null : row?.key_live === true;
  return { user, keyLive };
}

/** Whether any account is an admin (a server install bootstraps its first one). */
export async function adminExists(db: Db): Promise<boolean> {
  const rows = await queryRows<{ one: number }>(db, sql`SELECT 1 AS one FROM users WHERE role = 'admin' LIMIT 1`);
  return rows.length > 0;
}
