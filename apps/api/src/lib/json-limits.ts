// Bounds on the JSON the server accepts. JSON.parse has no depth limit (V8 parses a million
// nested brackets), but what comes after it does: JSON.stringify and canonicalize recurse and
// overflow the JS stack near 10,000 levels, Postgres' json/jsonb parsers hit max_stack_depth
// (2 MB by default) between 10,000 and 50,000, and a browser's structured clone has its own
// limit. A value that gets past the API and fails later fails where nobody can tell its sender:
// a 500, or a stored chunk input or result that breaks every lease of its task.

import { type JsonViolation, jsonTextTooDeep, jsonViolation } from "@crowdcompute/contract/json-limits";
import { MAX_JSON_DEPTH, MAX_JSON_VALUE_CHARS } from "@crowdcompute/contract/limits";
import { ProblemError, unprocessable } from "./problem.ts";

// The checks themselves are the contract's (packages/contract/src/json-limits.ts): the task schema uses them too.
export { type JsonViolation, jsonTextTooDeep, jsonViolation };

/** The contract's bounds on one stored value (packages/contract/src/limits.ts), under the names the API has used. */
export const maxJsonDepth = MAX_JSON_DEPTH;
export const maxJsonValueChars = MAX_JSON_VALUE_CHARS;

/** A request body wraps the values it carries in a few levels of its own (`{results: [{result: …}]}` is 3). */
export const maxBodyDepth = maxJsonDepth + 4;

/** The problem for a violation: 413 for size, 422 for depth, naming where (`what` names the root, e.g. "line 3"). */
export function jsonLimitProblem(violation: JsonViolation, what = "the body"): ProblemError {
  const where = violation.path ? (what === "the body" ? violation.path : `${what}, at ${violation.path}`) : what;
  const errors = [{ path: violation.path || what, message: violation.message }];
  const detail = `${where} is ${violation.message}`;
  return violation.kind === "size" ? new ProblemError(413, "Payload too large", detail, errors) : unprocessable(detail, errors);
}

/** Throws the problem for `value` when it passes the limits. */
export function assertJsonWithinLimits(value: unknown, limits: { maxDepth?: number; maxChars?: number; path?: string } = {}, what = "the body"): void {
  const violation = jsonViolation(value, limits);
  if (violation) throw jsonLimitProblem(violation, what);
}

/**
 * One NDJSON line against the limits for a stored value, by its text: its length and the
 * depth of its brackets. `line` is its 1-based number in the body, named in the problem.
 */
export function assertNdjsonLineWithinLimits(text: string, line: number): void {
  const path = `body.line.${line}`;
  if (text.length > maxJsonValueChars) {
    throw new ProblemError(413, "Payload too large", `line ${line} is longer than ${maxJsonValueChars} characters (an input line may be at most ${maxJsonValueChars / 1024} KiB)`, [
      { path, message: `longer than ${maxJsonValueChars} characters` },
    ]);
  }
  const at = jsonTextTooDeep(text);
  if (at >= 0) {
    throw unprocessable(`line ${line} is nested deeper than ${maxJsonDepth} levels of arrays and objects (at character ${at + 1})`, [{ path, message: `nested deeper than ${maxJsonDepth} levels` }]);
  }
}
