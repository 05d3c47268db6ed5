import { newVolunteerSchema as body, volunteerFiguresSchema as figures, linkVolunteerSchema, renameSchema, volunteerSchema as volunteer } from "@crowdcompute/contract";
import { createVolunteer, getVolunteerFigures, linkVolunteer, renameVolunteer } from "@crowdcompute/db";
import { createRoute, z } from "@hono/zod-openapi";
import { authorize, createRouter, creatorRoles, volunteerRoles } from "../../lib/context.ts";
import { mintDayMs, mintHourMs, spendLimits } from "../../lib/limits.ts";
import { problems, security } from "../../lib/openapi.ts";
import { conflict, notFound, unprocessable } from "../../lib/problem.ts";
import { networkSource } from "../../lib/sources.ts";

const create = createRoute({
  method: "post",
  path: "/api/volunteers",
  summary: "Create a volunteer",
  description: "Create a volunteer identity (linked to the signed-in user, if any)",
  security: security.optionalCreator,
  request: { body: { content: { "application/json": { schema: body } }, required: false } },
  responses: {
    201: {
      description: "a long-lived volunteer token (1 year)",
      content: { "application/json": { schema: z.object({ token: z.string(), volunteer }) } },
    },
    429: { description: "too many new volunteers from this network source (anonymous) or for this account (signed in); nothing is created; see Retry-After" },
  },
});

const me = createRoute({
  method: "get",
  path: "/api/volunteers/me",
  summary: "A volunteer's own figures",
  description: "The calling volunteer's own figures: chunks done, CPU time and credit",
  security: security.volunteer,
  responses: { 200: { description: "the volunteer's figures", content: { "application/json": { schema: figures } } }, ...problems(404) },
});

const rename = createRoute({
  method: "patch",
  path: "/api/volunteers/me",
  summary: "Rename the calling volunteer",
  description: "Its name on the leaderboard, unless it computes for an account with a display name, which stands for all of the account's volunteers.",
  security: security.volunteer,
  request: { body: { content: { "application/json": { schema: renameSchema } }, required: true } },
  responses: { 200: { description: "the volunteer's figures, renamed", content: { "application/json": { schema: figures } } }, ...problems(404) },
});

const link = createRoute({
  method: "post",
  path: "/api/volunteers/link",
  summary: "Link a volunteer to the account",
  description:
    "Makes this browser's anonymous volunteer one of the signed-in account's. For a browser that volunteered before its person signed in: the volunteer (named by its token) counts for the account from then on, on the leaderboard too. Answers a new token for it that carries the account; the old one keeps working. Linking a volunteer already the account's changes nothing.",
  security: security.creator,
  request: { body: { content: { "application/json": { schema: linkVolunteerSchema } }, required: true } },
  responses: {
    200: { description: "the volunteer, now the account's, and its new token", content: { "application/json": { schema: z.object({ token: z.string(), volunteer }) } } },
    ...problems(404, 409, 422),
  },
});

export const volunteerRoutes = createRouter()
  .openapi(me, async (c) => {
    const claims = await authorize(c, volunteerRoles);
    const figures = await getVolunteerFigures(c.var.deps.db, claims.sub);
    if (!figures) throw notFound("volunteer");
    return c.json(figures, 200);
  })
  .openapi(rename, async (c) => {
    const claims = await authorize(c, volunteerRoles);
    const { db } = c.var.deps;
    if (!(await renameVolunteer(db, claims.sub, c.req.valid("json").name))) throw notFound("volunteer");
    return c.json((await getVolunteerFigures(db, claims.sub))!, 200);
  })
  .openapi(link, async (c) => {
    const owner = await authorize(c, creatorRoles);
    const { db, tokens } = c.var.deps;
    const claims = await tokens.verify(c.req.valid("json").token);
    if ("invalid" in claims || claims.role !== "volunteer") {
      throw unprocessable("token is not a volunteer token of this server", [{ path: "body.token", message: "invalid" in claims ? claims.invalid : "not a volunteer token" }]);
    }
    if (claims.uid && claims.uid !== owner.sub) throw conflict("this volunteer computes for another account");
    const outcome = await linkVolunteer(db, claims.sub, owner.sub);
    if (outcome === "no-volunteer") throw notFound("volunteer");
    if (outcome === "another-account") throw conflict("this volunteer computes for another account");
    const figures = (await getVolunteerFigures(db, claims.sub))!;
    const token = await tokens.sign({ sub: claims.sub, role: "volunteer", uid: owner.sub, ...(claims.apiKeyId ? { apiKeyId: claims.apiKeyId } : {}) });
    return c.json({ token, volunteer: { id: figures.id, name: figures.name, userId: figures.userId } }, 200);
  })
  .openapi(create, async (c) => {
    const { db, env, tokens } = c.var.deps;
    const owner = c.req.header("authorization") ? await authorize(c, creatorRoles) : null;
    const userId = owner?.sub ?? null;
    const input = c.req.valid("json") ?? {};
    // Counted before anything is created, one atomic hit each, so N at once mint at most the
    // limit (docs/architecture.md, "Minting volunteers"): a signed-in caller's per account (all
    // its volunteers are one voter on a chunk), an anonymous one's per network source.
    const { mintPerHour, mintPerDay, mintPerAccountPerDay } = env.limits;
    if (userId) {
      await spendLimits(c, [{ key: `volunteers:account:${userId}`, limit: mintPerAccountPerDay }], mintDayMs, "new volunteers for this account");
    } else {
      const source = networkSource(c);
      await spendLimits(c, [{ key: `volunteers:hour:${source}`, limit: mintPerHour }], mintHourMs, "new volunteers from this network");
      await spendLimits(c, [{ key: `volunteers:day:${source}`, limit: mintPerDay }], mintDayMs, "new volunteers from this network");
    }
    // An admin's own volunteers start trusted, everyone else on probation
    // (docs/architecture.md, "Replication, trust and reduce").
    const row = await createVolunteer(db, { name: input.name ?? "anonymous volunteer", userId, trusted: owner?.role === "admin" });
    // The minting key goes into the token: revoking the key ends the volunteers minted with it.
    const token = await tokens.sign({ sub: row.id, role: "volunteer", ...(userId ? { uid: userId } : {}), ...(owner?.apiKeyId ? { apiKeyId: owner.apiKeyId } : {}) });
    return c.json({ token, volunteer: { id: row.id, name: row.name, userId: row.userId } }, 201);
  });
