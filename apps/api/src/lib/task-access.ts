import { getTaskAccess } from "@crowdcompute/db";
import { type AppContext, authorize, creatorRoles } from "./context.ts";
import { forbidden, notFound } from "./problem.ts";
import type { TokenClaims } from "./tokens.ts";

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The caller's claims and the task's owner and status, when the caller is its owner or an
 * admin: 401/403 otherwise, and 404 for an id that names no task (malformed ones included).
 */
export async function ownedTask(c: AppContext, id: string) {
  return requireTaskOwner(c, await authorize(c, creatorRoles), id);
}

/** As `ownedTask`, for claims the caller already has (e.g. from a stream ticket). */
export async function requireTaskOwner(c: AppContext, claims: TokenClaims, id: string) {
  if (!uuidPattern.test(id)) throw notFound("task");
  const access = await getTaskAccess(c.var.deps.db, id);
  if (!access) throw notFound("task");
  if (claims.role !== "admin" && access.ownerId !== claims.sub) throw forbidden("this task belongs to another creator");
  return { claims, access };
}
