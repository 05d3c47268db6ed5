import { getTaskAccess } from "@crowdcompute/db";
import { authorize, creatorRoles, type AppContext } from "./context.ts";
import { forbidden, notFound } from "./problem.ts";

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The caller's claims and the task's owner and status, when the caller is its owner or an
 * admin: 401/403 otherwise, and 404 for an id that names no task (malformed ones included).
 */
export async function ownedTask(c: AppContext, id: string) {
  const claims = await authorize(c, creatorRoles);
  if (!uuidPattern.test(id)) throw notFound("task");
  const access = await getTaskAccess(c.var.deps.db, id);
  if (!access) throw notFound("task");
  if (claims.role !== "admin" && access.ownerId !== claims.sub) throw forbidden("this task belongs to another creator");
  return { claims, access };
}
