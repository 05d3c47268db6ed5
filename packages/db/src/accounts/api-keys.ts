import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { newId } from "../ids.ts";
import { apiKeys, users } from "../schema.ts";

export type ApiKeyRow = Omit<typeof apiKeys.$inferSelect, "keyHash">;

/** At most this many unrevoked keys per user: a leaked session cannot mint keys without end. */
export const maxActiveApiKeys = 100;

const publicColumns = {
  id: apiKeys.id,
  userId: apiKeys.userId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
  revokedAt: apiKeys.revokedAt,
};

/**
 * Stores a key by its hash; null when the user already has `maxActiveApiKeys` unrevoked
 * keys. The count and the insert are one statement.
 */
export async function createApiKey(db: Db, input: { userId: string; name: string; prefix: string; keyHash: string }): Promise<ApiKeyRow | null> {
  const [row] = await queryRows<{ id: string }>(
    db,
    sql`INSERT INTO api_keys (id, user_id, name, prefix, key_hash)
        SELECT ${newId()}, ${input.userId}, ${input.name}, ${input.prefix}, ${input.keyHash}
        WHERE (SELECT count(*) FROM api_keys WHERE user_id = ${input.userId} AND revoked_at IS NULL) < ${maxActiveApiKeys}
        RETURNING id`,
  );
  if (!row) return null;
  const [created] = await db.select(publicColumns).from(apiKeys).where(eq(apiKeys.id, row.id));
  return created ?? null;
}

/** A user's keys, newest first, revoked ones included (with `revokedAt`). */
export async function listApiKeys(db: Db, userId: string, limit = 200): Promise<ApiKeyRow[]> {
  return db.select(publicColumns).from(apiKeys).where(eq(apiKeys.userId, userId)).orderBy(desc(apiKeys.id)).limit(limit);
}

/** Revokes one of the user's live keys; false when there is no such live key. */
export async function revokeApiKey(db: Db, input: { id: string; userId: string }): Promise<boolean> {
  const rows = await db
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiKeys.id, input.id), eq(apiKeys.userId, input.userId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

/**
 * The owner of a live key, by the key's sha256. Marks the key used, at most once a minute,
 * so that authenticating is not a write per request.
 */
export async function findApiKeyOwner(db: Db, keyHash: string): Promise<{ keyId: string; userId: string; role: "admin" | "creator" } | null> {
  const [row] = await db
    .select({ keyId: apiKeys.id, userId: apiKeys.userId, role: users.role, lastUsedAt: apiKeys.lastUsedAt })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)));
  if (!row) return null;
  if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > 60_000) {
    await db.execute(sql`UPDATE api_keys SET last_used_at = now()
      WHERE id = ${row.keyId} AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`);
  }
  return { keyId: row.keyId, userId: row.userId, role: row.role };
}
