// What the OpenAPI document says beyond each route's schemas: who may call an operation (its
// security, from the three ways a caller proves itself) and what its error answers look like
// (one problem+json schema, the contract's). Routes declare their own security and the errors
// only they give (404, 409, 429); the errors every operation of a kind can give are added here,
// from what the operation takes, so that no route has to repeat them and none can forget them.
// docs/architecture.md, "Rooms" (the routes layout) and "Live updates, metrics, limits".
import { PROBLEM_MEDIA_TYPE, problemSchema } from "@crowdcompute/contract";
import type { Role } from "./tokens.ts";

/** How a caller proves itself (lib/context.ts: `authorize`, `authorizeStream`). */
export const securitySchemes = {
  bearer: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "a session JWT (POST /api/auth/login or /register: roles creator, admin) or a volunteer token (POST /api/volunteers: role volunteer)",
  },
  apiKey: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "cc_…",
    description: "a creator's API key (POST /api/keys), sent as `Authorization: Bearer cc_…`: acts as its creator, with the creator role only",
  },
  ticket: {
    type: "apiKey",
    in: "query",
    name: "ticket",
    description: "a 60 s stream ticket (POST /api/tickets) for an EventSource, which cannot send headers",
  },
} as const;

type SecurityRequirement = Partial<Record<keyof typeof securitySchemes, string[]>>;

// OpenAPI 3.1 lets a non-OAuth requirement list the roles it needs: the bearer JWT's roles.
const bearer = (...roles: Role[]): SecurityRequirement => ({ bearer: roles });
const apiKey: SecurityRequirement = { apiKey: [] };

/** Each kind of caller an operation may take; any one requirement of the list will do. */
export const security = {
  /** Sign-up, sign-in, statistics, health: no credential. */
  none: [],
  /** A creator or an admin: a session, or an API key. */
  creator: [bearer("creator", "admin"), apiKey],
  /** A signed-in session only: API keys cannot manage API keys. */
  session: [bearer("creator", "admin")],
  admin: [bearer("admin")],
  volunteer: [bearer("volunteer")],
  /** What a volunteer may read of a task it runs, and its creator too. */
  taskReader: [bearer("volunteer", "creator", "admin"), apiKey],
  /** Anyone signed in, any way. */
  anyone: [bearer("volunteer", "creator", "admin"), apiKey],
  /** Event streams: a creator's credential, or a stream ticket of one. */
  creatorStream: [bearer("creator", "admin"), apiKey, { ticket: [] }],
  /** Optional: a creator's session or key links what is made to the account; without one it is anonymous. */
  optionalCreator: [{}, bearer("creator", "admin"), apiKey],
} satisfies Record<string, SecurityRequirement[]>;

const titles: Record<number, string> = {
  400: "the body is not JSON, or not of a media type the operation takes",
  401: "no credential, or one that is not valid (expired, revoked, malformed)",
  403: "a valid credential that may not do this (another role, another creator's task, a suspended account)",
  404: "no such resource (or one this caller may not know of)",
  409: "the resource is not in a state that allows this",
  413: "the body is larger than this operation takes; the problem names the limit",
  415: "a body of a media type the operation does not take",
  422: "a parameter, the query or the body is not valid: `errors` names each field",
  429: "too many requests of this kind; see Retry-After",
  500: "the server failed",
  503: "the database is unavailable (restarting, failing over); retry after Retry-After",
};

const problemContent = { [PROBLEM_MEDIA_TYPE]: { schema: problemSchema } };

/** Error answers only this operation gives, as route `responses`: `...problems(404, 409)`. */
export function problems<S extends number>(...statuses: S[]): Record<S, { description: string; content: typeof problemContent }> {
  return Object.fromEntries(statuses.map((status) => [status, { description: titles[status] ?? "an error", content: problemContent }])) as Record<
    S,
    { description: string; content: typeof problemContent }
  >;
}

// The parts of an OpenAPI document this reads and writes (the generator's own types are stricter).
type Operation = {
  security?: SecurityRequirement[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>;
};
type OpenApiDocument = { paths?: object };

const methods = ["get", "put", "post", "patch", "delete"];

/**
 * Completes each operation's error answers: every error response carries the problem schema,
 * and each operation gets those its kind can give: 500 and 503 any; 422 one that takes
 * parameters or a body; 400, 413 and 415 one that takes a body; 401 and 403 one that needs a
 * credential. Throws for an operation that does not declare its security (an empty list for
 * none), so a new route cannot be documented as open by omission.
 */
export function documentErrors<T extends OpenApiDocument>(document: T, problemRef: { $ref: string }): T {
  const content = { [PROBLEM_MEDIA_TYPE]: { schema: problemRef } };
  for (const [path, item] of Object.entries(document.paths ?? {}) as [string, Record<string, unknown> | undefined][]) {
    for (const [method, value] of Object.entries(item ?? {})) {
      if (!methods.includes(method) || typeof value !== "object" || value === null) continue;
      const operation = value as Operation;
      if (operation.security === undefined) throw new Error(`${method.toUpperCase()} ${path} declares no security (security.none for an open operation)`);
      const responses = (operation.responses ??= {});
      for (const [status, response] of Object.entries(responses)) {
        if (Number(status) >= 400 && !response.content) response.content = content;
      }
      const add = (...statuses: number[]) => {
        for (const status of statuses) responses[status] ??= { description: titles[status]!, content };
      };
      if (operation.security.some((requirement) => Object.keys(requirement).length > 0)) add(401, 403);
      if (operation.requestBody) add(400, 413, 415);
      if (operation.requestBody || (operation.parameters?.length ?? 0) > 0) add(422);
      add(500, 503);
    }
  }
  return document;
}
