import { renameSchema, sessionSchema as session, storableText, userSchema } from "@crowdcompute/contract";
import { createUser, findUserByEmail, findUserById, setDisplayName } from "@crowdcompute/db";
import { type AccountState, adminExists, approveUser } from "@crowdcompute/db/accounts";
import { createRoute, z } from "@hono/zod-openapi";
import { isAdminBootstrapToken } from "../../lib/admin-bootstrap.ts";
import { authorize, createRouter, creatorRoles } from "../../lib/context.ts";
import { loginWindowMs, refundLimits, signupWindowMs, spendLimit, spendLimits } from "../../lib/limits.ts";
import { security } from "../../lib/openapi.ts";
import { hashPassword, verifyPassword, verifyPasswordOfNoAccount } from "../../lib/passwords.ts";
import { conflict, forbidden, unauthorized } from "../../lib/problem.ts";
import { sourceOf } from "../../lib/sources.ts";

const credentials = z
  .object({
    email: z.string().trim().toLowerCase().pipe(z.email().max(254)),
    password: z.string().min(8, "at least 8 characters").max(1024),
  })
  .strict();

function accountStatus(account: AccountState, requireApproval: boolean): "active" | "pending" | "suspended" {
  if (account.suspended) return "suspended";
  if (requireApproval && account.role === "creator" && !account.approved) return "pending";
  return "active";
}

// A name volunteers see as the creator of this account's tasks (the email never is).
const registration = credentials
  .extend({
    name: storableText().trim().min(1).max(100).optional(),
    adminToken: z
      .string()
      .max(200)
      .optional()
      .openapi({ description: "Server installs only: with ADMIN_EMAIL as the email, the token the server prints at start while it has no admin; makes this account the admin" }),
  })
  .strict();

const route = (path: string, summary: string, status: 200 | 201, schema: typeof credentials | typeof registration = credentials) =>
  createRoute({
    method: "post",
    path,
    summary,
    security: security.none,
    request: { body: { content: { "application/json": { schema } }, required: true } },
    responses: {
      [status]: { description: "a session token (24 h) and the user", content: { "application/json": { schema: session } } },
      ...(status === 201
        ? { 403: { description: "adminToken is not this server's bootstrap token" }, 409: { description: "an account with this email exists, or the server has an admin already" } }
        : { 401: { description: "wrong email or password" }, 403: { description: "the account is suspended, or waits for approval" } }),
      429: { description: "too many attempts from this address, or for this account from this address; see Retry-After" },
    },
  });

const renameAccount = createRoute({
  method: "patch",
  path: "/api/auth/me",
  summary: "Set the account's display name",
  description: "What volunteers see as the creator of the account's tasks, and what the leaderboard shows for the account's volunteers (never the email).",
  security: security.creator,
  request: { body: { content: { "application/json": { schema: renameSchema } }, required: true } },
  responses: { 200: { description: "the account", content: { "application/json": { schema: z.object({ user: userSchema }) } } } },
});

export const authRoutes = createRouter()
  .openapi(route("/api/auth/register", "Create a creator account", 201, registration), async (c) => {
    const { db, env, tokens } = c.var.deps;
    const { email, password, name, adminToken } = c.req.valid("json") as z.output<typeof registration>;
    const ip = c.var.deps.clientIp(c);
    if (ip) await spendLimit(c, `register:ip:${sourceOf(ip)}`, env.limits.registerPerIp, signupWindowMs, "sign-ups from this address");
    // A server install's admin is whoever presents the operator's token, never merely the first
    // to register with ADMIN_EMAIL (lib/admin-bootstrap.ts); an embedded one's is its first user.
    let bootstrap = false;
    if (adminToken !== undefined) {
      if (env.embedded || !(await isAdminBootstrapToken(env, email, adminToken))) throw forbidden("adminToken is not this server's admin bootstrap token for this email");
      if (await adminExists(db)) throw conflict("this server has an admin already: the bootstrap token is spent; ask an admin");
      bootstrap = true;
    }
    const user = await createUser(db, {
      email,
      passwordHash: await hashPassword(password),
      displayName: name ?? null,
      firstIsAdmin: env.embedded,
      ...(bootstrap || (env.embedded && env.adminEmail) ? { adminEmail: env.adminEmail! } : {}),
    });
    if (!user) throw conflict("an account with this email exists; sign in instead");
    // New accounts start unapproved: they wait for an admin only while approval is required.
    const approved = !env.requireCreatorApproval || user.role === "admin";
    if (approved) await approveUser(db, user.id);
    const token = await tokens.sign({ sub: user.id, role: user.role });
    const status = approved ? ("active" as const) : ("pending" as const);
    return c.json({ token, user: { id: user.id, email: user.email, role: user.role, status, name: user.displayName } }, 201);
  })
  .openapi(route("/api/auth/login", "Sign in", 200), async (c) => {
    const { db, env, tokens } = c.var.deps;
    const { email, password } = c.req.valid("json");
    // Attempts are counted per source address, and per account *and* source: never per
    // account alone, which would let anyone lock the owner out with ten wrong passwords. Each
    // attempt is counted, atomically, before its password is checked, so that 300 guesses at
    // once are 300 hits and only the first `limit` get checked; a right password gives its
    // hits back. Past either limit no password is even checked, so guessing costs the attacker
    // time, not us CPU. Guessing one account from many addresses is slowed by the PBKDF2 cost
    // and by each address's own limit; an IPv6 source counts as its /64, which one host
    // usually holds (docs/architecture.md, "Live updates, metrics, limits").
    const source = sourceOf(c.var.deps.clientIp(c) ?? "unknown");
    const keys = [{ key: `login:account-source:${email}:${source}`, limit: env.limits.loginPerAccount }];
    if (source !== "unknown") keys.push({ key: `login:source:${source}`, limit: env.limits.loginPerIp });
    await spendLimits(c, keys, loginWindowMs, "failed sign-ins");
    const user = await findUserByEmail(db, email);
    // An unknown email costs the same PBKDF2 work as a wrong password: the time of the answer
    // does not tell whether the account exists.
    const valid = user ? await verifyPassword(password, user.passwordHash) : await verifyPasswordOfNoAccount(password);
    if (!user || !valid) throw unauthorized("wrong email or password");
    await refundLimits(c, keys, loginWindowMs);
    const token = await tokens.sign({ sub: user.id, role: user.role });
    const account = { role: user.role, approved: user.approvedAt !== null, suspended: user.suspendedAt !== null };
    return c.json({ token, user: { id: user.id, email: user.email, role: user.role, status: accountStatus(account, env.requireCreatorApproval), name: user.displayName } }, 200);
  })
  .openapi(renameAccount, async (c) => {
    const claims = await authorize(c, creatorRoles);
    const { db, env } = c.var.deps;
    const { name } = c.req.valid("json");
    await setDisplayName(db, claims.sub, name);
    const user = (await findUserById(db, claims.sub))!;
    const account = { role: user.role, approved: user.approvedAt !== null, suspended: user.suspendedAt !== null };
    return c.json({ user: { id: user.id, email: user.email, role: user.role, status: accountStatus(account, env.requireCreatorApproval), name: user.displayName } }, 200);
  });
