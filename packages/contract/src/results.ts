// Reading a task's results: the download (`GET /api/tasks/:id/results`) and following it as
// chunks are decided (`?follow=true`, resumed with `?after=`). The API validates its query
// with these schemas; the SDK and the CLI take the line shape and the cursor from here.
// docs/architecture.md, "Following results".
import { z } from "zod";

/**
 * A follow cursor: `<transaction id>-<index>` of the last line read. Opaque to clients;
 * each followed line carries the cursor that resumes right after it.
 */
export const FOLLOW_CURSOR_PATTERN = /^\d{1,20}-\d{1,10}$/;

const maxXid = 2n ** 64n - 1n;

/** Whether `text` is a cursor a followed line could have carried. */
export function isFollowCursor(text: string): boolean {
  if (!FOLLOW_CURSOR_PATTERN.test(text)) return false;
  const [xid, index] = text.split("-") as [string, string];
  return BigInt(xid) <= maxXid && Number(index) <= 2 ** 31 - 1;
}

export const resultsQuerySchema = z
  .object({
    format: z.enum(["ndjson", "csv"]).default("ndjson"),
    follow: z.enum(["true", "false"]).default("false").meta({
      description:
        "true: stream every final chunk as it is decided, in the order decided (not index order), each line once, until the task ends (done, failed or cancelled); each line carries its `cursor`",
    }),
    after: z
      .string()
      .max(32)
      .refine(isFollowCursor, "after must be the cursor of a followed line")
      .optional()
      .meta({ description: "With follow=true: resume after the line that carried this cursor, with no line missed or repeated" }),
    from: z
      .enum(["start", "now"])
      .optional()
      .meta({ description: "With follow=true and no `after`: `now` skips the chunks decided before the request and follows only those decided after (a live tail); default `start`" }),
  })
  .strict()
  .refine((query) => query.after === undefined || query.follow === "true", { message: "after needs follow=true", path: ["after"] })
  .refine((query) => query.from === undefined || query.follow === "true", { message: "from needs follow=true", path: ["from"] })
  .refine((query) => query.from === undefined || query.after === undefined, { message: "give at most one of after and from", path: ["from"] });

export type ResultsQuery = z.input<typeof resultsQuerySchema>;

/** The download's CSV header; a followed CSV adds a last `cursor` column. */
export const RESULTS_CSV_HEADER = "index,status,input,result,error";
export const FOLLOW_CSV_HEADER = `${RESULTS_CSV_HEADER},cursor`;

/** One NDJSON line of the results: a done chunk with its result, or a failed one with its error. */
export const resultLineSchema = z.union([
  z.object({ index: z.number().int(), input: z.unknown(), status: z.literal("done"), result: z.unknown(), cursor: z.string().optional() }),
  z.object({
    index: z.number().int(),
    input: z.unknown(),
    status: z.literal("failed"),
    error: z.object({ kind: z.string(), message: z.string() }),
    cursor: z.string().optional(),
  }),
]);

/** A results line; `cursor` only on followed lines. */
export type ResultLine = z.output<typeof resultLineSchema>;
