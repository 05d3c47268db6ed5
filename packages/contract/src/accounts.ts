// The people side of the HTTP API: accounts and sessions, volunteers, API keys, and the public
// figures (site statistics, the leaderboard). As tasks.ts: the API validates and documents with
// these schemas, and the SDK's types are inferred from them.
import { z } from "zod";
import { type TaskStatus, taskStatuses } from "./statuses.ts";
import { storableText } from "./tasks.ts";

/** A display name, a volunteer's name or a key's: text Postgres can store, trimmed, 1–100 characters. */
const name = () => storableText().trim().min(1).max(100);

export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(["admin", "creator"]),
  status: z.enum(["active", "pending", "suspended"]).meta({ description: "pending: waits for an admin's approval (REQUIRE_CREATOR_APPROVAL); suspended: by an admin" }),
  name: z.string().nullable().meta({ description: "the display name volunteers and the leaderboard see (never the email); null when none was given" }),
});

export const sessionSchema = z.object({ token: z.string(), user: userSchema });

/** `PATCH /api/auth/me` and `PATCH /api/volunteers/me`. */
export const renameSchema = z.object({ name: name() }).strict();

export const volunteerSchema = z.object({ id: z.string(), name: z.string(), userId: z.string().nullable() });

/** `POST /api/volunteers/link`: the volunteer token of this browser, to count for the signed-in account. */
export const linkVolunteerSchema = z.object({ token: z.string().min(1).max(4096) }).strict();

/** `POST /api/volunteers`: a name is optional (a default is made). */
export const newVolunteerSchema = z.object({ name: name().optional() }).strict();

/** A volunteer's own figures; credit is in ms of CPU that won a quorum. */
export const volunteerFiguresSchema = z
  .object({
    id: z.string(),
    name: z.string().meta({ description: "the name the volunteer chose" }),
    userId: z.string().nullable().meta({ description: "the account it computes for; null for an anonymous volunteer" }),
    shownAs: z.string().meta({ description: "its name on the leaderboard: its account's display name when the account has one" }),
    chunksDone: z.number(),
    cpuMs: z.number(),
    credit: z.number().meta({ description: "ms of CPU whose results won their quorum" }),
  })
  .meta({ id: "VolunteerFigures" });

/** A creator's API key as listed: never the key itself, which creating it shows once. */
export const apiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().meta({ description: "the key's first characters, to tell keys apart", example: "cc_Xy12abCd" }),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable().meta({ description: "updated at most once a minute" }),
    revokedAt: z.string().nullable(),
  })
  .meta({ id: "ApiKey" });

export const newApiKeySchema = z.object({ name: name().default("API key") }).strict();

/** `GET /api/stats`: site-wide figures, at most 1 s old. */
export const siteStatsSchema = z
  .object({
    tasks: z.object(Object.fromEntries(taskStatuses.map((status) => [status, z.number()])) as Record<TaskStatus, z.ZodNumber>).meta({ description: "tasks by status" }),
    chunks: z.object({ done: z.number(), failed: z.number() }),
    cpuMs: z.number(),
    chunksPerSec: z.number().meta({ description: "results accepted per second over the last 60 s" }),
    volunteersOnline: z.number().meta({ description: "volunteers with a lease or a result in the last 2 minutes" }),
    at: z.string(),
  })
  .meta({ id: "Stats" });

/** One line of `GET /api/leaderboard`, best first (by credit, then chunks done). */
export const leaderboardEntrySchema = z
  .object({
    kind: z.enum(["user", "volunteer"]).meta({ description: "a signed-in user (all their volunteers together), or one anonymous volunteer" }),
    id: z.string(),
    name: z.string(),
    chunksDone: z.number(),
    cpuMs: z.number(),
    credit: z.number().meta({ description: "earned only by results that won their quorum: min(claimed CPU ms, time the server saw, timeoutMs)" }),
  })
  .meta({ id: "LeaderboardEntry" });

/** `POST /api/tickets`: a 60 s ticket for `?ticket=` on event streams. */
export const streamTicketSchema = z.object({ ticket: z.string(), expiresAt: z.string() });

/** An account as admins see it (`GET /api/admin/users`). */
export const accountSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    role: z.enum(["admin", "creator"]),
    createdAt: z.string(),
    approvedAt: z.string().nullable(),
    suspendedAt: z.string().nullable(),
  })
  .meta({ id: "Account" });

export type User = z.output<typeof userSchema>;
export type Session = z.output<typeof sessionSchema>;
export type Volunteer = z.output<typeof volunteerSchema>;
export type VolunteerFigures = z.output<typeof volunteerFiguresSchema>;
export type ApiKey = z.output<typeof apiKeySchema>;
export type SiteStats = z.output<typeof siteStatsSchema>;
export type LeaderboardEntry = z.output<typeof leaderboardEntrySchema>;
export type StreamTicket = z.output<typeof streamTicketSchema>;
export type Account = z.output<typeof accountSchema>;
