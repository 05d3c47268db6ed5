import { createRoute, z } from "@hono/zod-openapi";
import { approveUser, createUser, findUserByEmail, type AccountState } from "@crowdcompute/db";
import { createRouter } from "../../lib/context.ts";
import { checkLimits, loginWindowMs, signupWindowMs, spendLimit } from "../../lib/limits.ts";
import { hashPassword, verifyPassword } from "../../lib/passwords.ts";
import { conflict, unauthorized } from "../../lib/problem.ts";
import { storableText } from "../../lib/text.ts";

const credentials = z
  .object({
    email: z.string().trim().toLowerCase().pipe(z.email().max(254)),
    password: z.string().min(8, "at least 8 characters").max(1024),
  })
  .strict();

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(["admin", "creator"]),
  status: z.enum(["active", "pending", "suspended"]).openapi({ description: "pending: waits for an admin's approval (REQUIRE_CREATOR_APPROVAL); suspended: by an admin" }),
});

export function accountStatus(account: AccountState, requireApproval: boolean): "active" | "pending" | "suspended" {
  if (account.suspended) return "suspended";
  if (requireApproval && account.role === "creator" && !account.approved) return "pending";
  return "active";
}
const session = z.object({ token: z.string(), user: userSchema });

// A name volunteers see as the creator of this account's tasks (the email never is).
const registration = credentials.extend({ name: storableText().trim().min(1).max(100).optional() }).strict();

const route = (path: string, summary: string, status: 200 | 201, schema: typeof credentials | typeof registration = credentials) =>
  createRoute({
    method: "post",
    path,
    summary,
    request: { body: { content: { "application/json": { schema } }, required: true } },
    responses: {
      [status]: { description: "a session token (24 h) and the user", content: { "application/json": { schema: session } } },
      429: { description: "too many attempts from this address or for this account; see Retry-After" },
    },
  });

export const authRoutes = createRouter()
  .openapi(route("/api/auth/register", "Create a creator account", 201, registration), async (c) => {
    const { db, env, tokens } = c.var.deps;
    const { email, password, name } = c.req.valid("json") as z.output<typeof registration>;
    const ip = c.var.deps.clientIp(c);
    if (ip) await spendLimit(c, `register:ip:${ip}`, env.limits.registerPerIp, signupWindowMs, "sign-ups from this address");
    const user = await createUser(db, {
      email,
      passwordHash: await hashPassword(password),
      displayName: name ?? null,
      firstIsAdmin: env.embedded,
      ...(env.adminEmail ? { adminEmail: env.adminEmail } : {}),
    });
    if (!user) throw conflict("an account with this email exists; sign in instead");
    // New accounts start unapproved: they wait for an admin only while approval is required.
    const approved = !env.requireCreatorApproval || user.role === "admin";
    if (approved) await approveUser(db, user.id);
    const token = await tokens.sign({ sub: user.id, role: user.role });
    const status = approved ? ("active" as const) : ("pending" as const);
    return c.json({ token, user: { id: user.id, email: user.email, role: user.role, status } }, 201);
  })
  .openapi(route("/api/auth/login", "Sign in", 200), async (c) => {
    const { db, env, tokens } = c.var.deps;
    const { email, password } = c.req.valid("json");
    // Failed attempts are counted per account and per address; past either limit no
    // password is even checked, so guessing costs the attacker time, not us CPU.
    const ip = c.var.deps.clientIp(c);
    const keys = [{ key: `login:account:${email}`, limit: env.limits.loginPerAccount }];
    if (ip) keys.push({ key: `login:ip:${ip}`, limit: env.limits.loginPerIp });
    await checkLimits(c, keys, loginWindowMs, "failed sign-ins");
    const user = await findUserByEmail(db, email);
    if (!user || !(await verifyPassword(password, user.passwordHash))) {
      for (const { key } of keys) await spendLimit(c, key, Number.MAX_SAFE_INTEGER, loginWindowMs, "failed sign-ins");
      throw unauthorized("wrong email or password");
    }
    const token = await tokens.sign({ sub: user.id, role: user.role });
    const account = { role: user.role, approved: user.approvedAt !== null, suspended: user.suspendedAt !== null };
    return c.json({ token, user: { id: user.id, email: user.email, role: user.role, status: accountStatus(account, env.requireCreatorApproval) } }, 200);
  });
