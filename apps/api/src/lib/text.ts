import { z } from "@hono/zod-openapi";

/**
 * Text that Postgres can store: `text` and `jsonb` refuse the NUL character, so it is
 * refused here, where the problem can name the field (DESIGN §6: every limit a clear 4xx).
 */
export const storableText = () => z.string().refine((value) => !value.includes("\u0000"), "must not contain NUL characters");
