import { OpenAPIHono } from "@hono/zod-openapi";
import type { Db } from "@crowdcompute/db";
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import type { LeaseIds } from "./lease-ids.ts";
import { forbidden, unauthorized, unprocessable } from "./problem.ts";
import type { Role, TokenClaims, Tokens } from "./tokens.ts";

/** What every handler may use; built once by `createApp`. */
export interface Deps {
  db: Db;
  env: AppEnv;
  tokens: Tokens;
  leaseIds: LeaseIds;
}

export type AppBindings = { Variables: { deps: Deps } };
export type AppContext = Context<AppBindings>;

/** A router whose validation failures become 422 problems naming each field. */
export function createRouter() {
  return new OpenAPIHono<AppBindings>({
    defaultHook: (result) => {
      if (!result.success) {
        const errors = result.error.issues.map((issue) => ({
          path: issue.path.join(".") || result.target,
          message: issue.message,
        }));
        const summary = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
        throw unprocessable(`invalid ${result.target}: ${summary}`, errors);
      }
    },
  });
}

/** The caller's claims when its bearer token is valid and has one of `roles`; else 401/403. */
export async function authorize(c: AppContext, roles: readonly Role[]): Promise<TokenClaims> {
  const header = c.req.header("authorization");
  if (!header) throw unauthorized("missing Authorization: Bearer <token> header");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw unauthorized("Authorization header must be `Bearer <token>`");
  const claims = await c.var.deps.tokens.verify(match[1]!);
  if ("invalid" in claims) throw unauthorized(claims.invalid);
  if (!roles.includes(claims.role)) throw forbidden(`this needs a ${roles.join(" or ")} token, not a ${claims.role} token`);
  return claims;
}

export const creatorRoles = ["creator", "admin"] as const satisfies Role[];
export const volunteerRoles = ["volunteer"] as const satisfies Role[];
