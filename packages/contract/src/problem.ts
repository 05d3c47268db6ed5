// Every error answer of the API: an RFC 9457 problem document (`application/problem+json`).
// The API renders them in one place (apps/api/src/lib/problem.ts) and documents every
// operation's error answers with this schema; the SDK's ApiError carries one.
import { z } from "zod";

export const PROBLEM_MEDIA_TYPE = "application/problem+json";

export const problemSchema = z
  .object({
    type: z.string().meta({ description: "always `about:blank`: the status and title say what kind of error it is" }),
    title: z.string().meta({ description: "the status's name, e.g. `Unprocessable content`" }),
    status: z.number().int(),
    detail: z.string().meta({ description: "what was wrong with this request, in words" }),
    errors: z
      .array(z.object({ path: z.string().meta({ description: "the field, as dotted keys from the body, query or params (`range.end`)" }), message: z.string() }))
      .optional()
      .meta({ description: "one entry per field at fault (validation errors)" }),
  })
  .meta({ id: "Problem" });

export type Problem = z.output<typeof problemSchema>;
