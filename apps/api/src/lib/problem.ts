import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface FieldIssue {
  path: string;
  message: string;
}

/** An error a request can cause: rendered as `application/problem+json` (RFC 9457). */
export class ProblemError extends Error {
  readonly status: ContentfulStatusCode;
  readonly title: string;
  readonly errors: FieldIssue[] | undefined;
  /** Extra response headers, e.g. `Retry-After` on a 429. */
  readonly headers: Record<string, string>;

  constructor(status: ContentfulStatusCode, title: string, detail?: string, errors?: FieldIssue[], headers: Record<string, string> = {}) {
    super(detail ?? title);
    this.status = status;
    this.title = title;
    this.errors = errors;
    this.headers = headers;
  }
}

export const badRequest = (detail: string, errors?: FieldIssue[]) => new ProblemError(400, "Bad request", detail, errors);
export const unauthorized = (detail: string) => new ProblemError(401, "Unauthorized", detail);
export const forbidden = (detail: string) => new ProblemError(403, "Forbidden", detail);
export const notFound = (what: string) => new ProblemError(404, "Not found", `${what} not found`);
export const conflict = (detail: string) => new ProblemError(409, "Conflict", detail);
export const unprocessable = (detail: string, errors?: FieldIssue[]) => new ProblemError(422, "Unprocessable content", detail, errors);
export const tooManyRequests = (detail: string, retryAfterMs: number) =>
  new ProblemError(429, "Too many requests", detail, undefined, { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });

function problemResponse(c: Context, problem: ProblemError): Response {
  const body = {
    type: "about:blank",
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
  return c.body(JSON.stringify(body), problem.status, { ...problem.headers, "content-type": "application/problem+json" });
}

/**
 * A database refusal caused by the request's data rather than by the server: Postgres
 * "data exception" codes (class 22: a NUL character in text or jsonb, a number out of
 * range) and a reference to a row that does not exist (23503). Validation should catch
 * these first; this keeps a value that slips past it a 4xx, and its statement wrote nothing.
 */
function databaseInputProblem(error: unknown): ProblemError | null {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code !== "string") continue;
    if (e.code.startsWith("22")) return unprocessable("the request holds a value the database cannot store (e.g. a NUL character, or a number out of range)");
    if (e.code === "23503") return conflict("the request refers to something that no longer exists");
  }
  return null;
}

// Postgres codes of a server going away (57P01 admin shutdown, 57P02 crash shutdown, 57P03
// starting up, class 08 connection exceptions) and postgres.js/Node codes of a lost socket.
const unavailableCodes = /^(57P0[123]|08...|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|CONNECTION_(CLOSED|ENDED|DESTROYED|CONNECT_TIMEOUT))$/;

/**
 * The database cannot be reached (restarting, failing over): a 503 with Retry-After, which
 * clients retry, rather than a 500. The statement did not commit, or committed and will be
 * answered again idempotently on the retry (docs/architecture.md, "Result storage").
 */
function databaseUnavailable(error: unknown): ProblemError | null {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && unavailableCodes.test(e.code)) {
      return new ProblemError(503, "Service unavailable", "the database is unavailable; retry shortly", undefined, { "retry-after": "1" });
    }
  }
  return null;
}

/** The one place errors become responses. */
export function renderError(error: Error, c: Context): Response {
  if (error instanceof ProblemError) return problemResponse(c, error);
  const fromDatabase = databaseInputProblem(error);
  if (fromDatabase) return problemResponse(c, fromDatabase);
  const unavailable = databaseUnavailable(error);
  if (unavailable) return problemResponse(c, unavailable);
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    const title = status === 413 ? "Payload too large" : status < 500 ? "Bad request" : "Server error";
    return problemResponse(c, new ProblemError(status, title, error.message || title));
  }
  console.error(error);
  return problemResponse(c, new ProblemError(500, "Server error", "the server failed to handle this request"));
}
