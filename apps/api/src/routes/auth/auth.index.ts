import { createRoute, z } from "@hono/zod-openapi";
import { createUser, findUserByEmail } from "@crowdcompute/db";
import { createRouter } from "../../lib/context.ts";
import { hashPassword, verifyPassword } from "../../lib/passwords.ts";
import { conflict, unauthorized } from "../../lib/problem.ts";

const credentials = z
  .object({
    email: z.string().trim().toLowerCase().pipe(z.email().max(254)),
    password: z.string().min(8, "at least 8 characters").max(1024),
  })
  .strict();

export const userSchema = z.object({ id: z.string(), email: z.string(), role: z.enum(["admin", "creator"]) });
const session = z.object({ token: z.string(), user: userSchema });

const route = (path: string, summary: string, status: 200 | 201) =>
  createRoute({
    method: "post",
    path,
    summary,
    request: { body: { content: { "application/json": { schema: credentials } }, required: true } },
    responses: { [status]: { description: "a session token (24 h) and the user", content: { "application/json": { schema: session } } } },
  });

export const authRoutes = createRouter()
  .openapi(route("/api/auth/register", "Create a creator account", 201), async (c) => {
    const { db, env, tokens } = c.var.deps;
    const { email, password } = c.req.valid("json");
    const user = await createUser(db, {
      email,
      passwordHash: await hashPassword(password),
      firstIsAdmin: env.embedded,
      ...(env.adminEmail ? { adminEmail: env.adminEmail } : {}),
    });
    if (!user) throw conflict("an account with this email exists; sign in instead");
    const token = await tokens.sign({ sub: user.id, role: user.role });
    return c.json({ token, user: { id: user.id, email: user.email, role: user.role } }, 201);
  })
  .openapi(route("/api/auth/login", "Sign in", 200), async (c) => {
    const { db, tokens } = c.var.deps;
    const { email, password } = c.req.valid("json");
    const user = await findUserByEmail(db, email);
    if (!user || !(await verifyPassword(password, user.passwordHash))) throw unauthorized("wrong email or password");
    const token = await tokens.sign({ sub: user.id, role: user.role });
    return c.json({ token, user: { id: user.id, email: user.email, role: user.role } }, 200);
  });
