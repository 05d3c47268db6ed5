import { apiKeySchema, newApiKeySchema as createBody } from "@crowdcompute/contract";
import { type ApiKeyRow, createApiKey, listApiKeys, maxActiveApiKeys, revokeApiKey } from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import { mintApiKey } from "../../lib/api-keys.ts";
import { type AppContext, authorize, createRouter, creatorRoles } from "../../lib/context.ts";
import { problems, security } from "../../lib/openapi.ts";
import { conflict, forbidden, notFound } from "../../lib/problem.ts";
import { uuidPattern } from "../../lib/task-access.ts";

const create = createRoute({
  method: "post",
  path: "/api/keys",
  tags: ["keys"],
  security: security.session,
  summary: "Create an API key",
  description: "Mint an API key (shown once) for scripts: `Authorization: Bearer cc_…` acts as you, as a creator",
  request: { body: { content: { "application/json": { schema: createBody } }, required: false } },
  responses: {
    201: {
      description: "the key itself, only in this response, and its record",
      content: { "application/json": { schema: z.object({ key: z.string().openapi({ example: "cc_…" }), apiKey: apiKeySchema }) } },
    },
    ...problems(409),
  },
});

const list = createRoute({
  method: "get",
  path: "/api/keys",
  tags: ["keys"],
  security: security.session,
  summary: "List API keys",
  description: "The caller's API keys, newest first (never the keys themselves)",
  request: { query: z.object({}).strict() },
  responses: {
    200: {
      description: "the keys",
      content: { "application/json": { schema: z.object({ items: z.array(apiKeySchema), nextCursor: z.null() }) } },
    },
  },
});

const revoke = createRoute({
  method: "delete",
  path: "/api/keys/{id}",
  tags: ["keys"],
  security: security.session,
  summary: "Revoke an API key",
  description: "Revoke an API key: it stops working at once, and so do the volunteer tokens minted with it",
  request: { params: z.object({ id: z.string() }) },
  responses: { 204: { description: "revoked" }, ...problems(404) },
});

/** Keys are managed with a session only: a leaked key cannot mint itself successors. */
async function sessionCreator(c: AppContext) {
  const claims = await authorize(c, creatorRoles);
  if (claims.apiKeyId) throw forbidden("API keys cannot manage API keys: sign in");
  return claims;
}

const keyJson = (row: ApiKeyRow) => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  createdAt: row.createdAt.toISOString(),
  lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
  revokedAt: row.revokedAt?.toISOString() ?? null,
});

export const keyRoutes = createRouter()
  .openapi(create, async (c) => {
    const claims = await sessionCreator(c);
    // Without a JSON body the validator is skipped (the body is optional): default here too.
    const name = c.req.valid("json")?.name ?? "API key";
    const minted = await mintApiKey();
    const row = await createApiKey(c.var.deps.db, { userId: claims.sub, name, prefix: minted.prefix, keyHash: minted.keyHash });
    if (!row) throw conflict(`at most ${maxActiveApiKeys} API keys may be live at once: revoke one first`);
    return c.json({ key: minted.key, apiKey: keyJson(row) }, 201);
  })
  .openapi(list, async (c) => {
    const claims = await sessionCreator(c);
    const rows = await listApiKeys(c.var.deps.db, claims.sub);
    return c.json({ items: rows.map(keyJson), nextCursor: null }, 200);
  })
  .openapi(revoke, async (c) => {
    const claims = await sessionCreator(c);
    const { id } = c.req.valid("param");
    if (!uuidPattern.test(id) || !(await revokeApiKey(c.var.deps.db, { id, userId: claims.sub }))) throw notFound("API key");
    c.var.deps.minters.forget(); // its volunteers stop here now, elsewhere within the cache's TTL
    return c.body(null, 204);
  });
