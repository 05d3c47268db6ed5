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

  constructor(status: ContentfulStatusCode, title: string, detail?: string, errors?: FieldIssue[]) {
    super(detail ?? title);
    this.status = status;
    this.title = title;
    this.errors = errors;
  }
}

export const badRequest = (detail: string, errors?: FieldIssue[]) => new ProblemError(400, "Bad request", detail, errors);
export const unauthorized = (detail: string) => new ProblemError(401, "Unauthorized", detail);
export const forbidden = (detail: string) => new ProblemError(403, "Forbidden", detail);
export const notFound = (what: string) => new ProblemError(404, "Not found", `${what} not found`);
export const conflict = (detail: string) => new ProblemError(409, "Conflict", detail);
export const unprocessable = (detail: string, errors?: FieldIssue[]) => new ProblemError(422, "Unprocessable content", detail, errors);

export function problemResponse(c: Context, problem: ProblemError): Response {
  const body = {
    type: "about:blank",
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
  return c.body(JSON.stringify(body), problem.status, { "content-type": "application/problem+json" });
}

/** The one place errors become responses. */
export function renderError(error: Error, c: Context): Response {
  if (error instanceof ProblemError) return problemResponse(c, error);
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    const title = status === 413 ? "Payload too large" : status < 500 ? "Bad request" : "Server error";
    return problemResponse(c, new ProblemError(status, title, error.message || title));
  }
  console.error(error);
  return problemResponse(c, new ProblemError(500, "Server error", "the server failed to handle this request"));
}
