-- Blocks of up to 4096 chunks: a lease's reported mask becomes a bit string of n bits
-- (leftmost = offset 0), and a results row may hold a whole block (n > 1, its results as
-- one JSON array). Live leases keep what they had reported.
ALTER TABLE "leases" ADD COLUMN "reported_bits" varbit;--> statement-breakpoint
UPDATE "leases" SET "reported_bits" = (
  SELECT string_agg(CASE WHEN ("reported" >> o) & 1 = 1 THEN '1' ELSE '0' END, '' ORDER BY o)
  FROM generate_series(0, "n" - 1) AS o)::varbit;--> statement-breakpoint
ALTER TABLE "leases" DROP COLUMN "reported";--> statement-breakpoint
ALTER TABLE "leases" RENAME COLUMN "reported_bits" TO "reported";--> statement-breakpoint
ALTER TABLE "leases" ALTER COLUMN "reported" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ALTER COLUMN "cpu_ms" SET DATA TYPE bigint;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "n" smallint DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "input_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE "tasks" SET "input_bytes" = (SELECT coalesce(sum(octet_length(ci.input)), 0) FROM "chunk_inputs" ci WHERE ci.task_id = "tasks".id)
  WHERE "input_kind" <> 'range';
