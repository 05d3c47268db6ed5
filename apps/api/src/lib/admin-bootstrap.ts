// The first admin of a server install. Registering first with ADMIN_EMAIL used to make
// whoever did it the admin: on a public server, anyone quicker than the operator. Now the
// registration must also present a token only the operator can know: an HMAC of ADMIN_EMAIL
// under JWT_SECRET, which the Node server prints in its log at start while there is no admin
// (and `npm run admin-token` prints from the same two variables, e.g. for Workers). It is good
// only while no admin exists, so once used it opens nothing; it changes with either variable.
import type { Db } from "@crowdcompute/db";
import { adminExists } from "@crowdcompute/db/accounts";
import type { AppEnv } from "../env.ts";

const encoder = new TextEncoder();

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

/** The bootstrap token for `adminEmail` under `secret`: 43 base64url characters. */
export async function adminBootstrapToken(secret: string, adminEmail: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`crowdcompute admin bootstrap\u0000${adminEmail.trim().toLowerCase()}`));
  return base64url(new Uint8Array(mac));
}

/** Whether `token` is the bootstrap token for `email` on this install (compared in constant time). */
export async function isAdminBootstrapToken(env: Pick<AppEnv, "jwtSecret" | "adminEmail">, email: string, token: string): Promise<boolean> {
  if (!env.adminEmail || env.adminEmail.trim().toLowerCase() !== email.trim().toLowerCase()) return false;
  const expected = await adminBootstrapToken(env.jwtSecret, env.adminEmail);
  if (token.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ token.charCodeAt(i);
  return diff === 0;
}

/**
 * What a server install's operator needs to hear at start while it has no admin (null once it
 * has one, and on an embedded install, whose first account is its admin).
 */
export async function adminBootstrapNotice(db: Db, env: Pick<AppEnv, "jwtSecret" | "adminEmail" | "embedded">): Promise<string | null> {
  if (env.embedded || (await adminExists(db))) return null;
  if (!env.adminEmail) return "No admin yet: set ADMIN_EMAIL and restart to get the token that makes that account the admin.";
  const token = await adminBootstrapToken(env.jwtSecret, env.adminEmail);
  return `No admin yet: register ${env.adminEmail} with "adminToken": "${token}" in the body of POST /api/auth/register to make it the admin (the token works only while there is no admin).`;
}
