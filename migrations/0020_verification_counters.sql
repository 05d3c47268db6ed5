-- What verification costs a task, kept in its sharded counters (docs/architecture.md,
-- "Replication, trust and reduce"): copies received, chunks replicated, disagreements and
-- volunteers banned. Copies and chunks replicated so far are counted from the votes kept;
-- disagreements and bans before this migration are not known and start at 0.
ALTER TABLE "task_counters" ADD COLUMN "copies" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "task_counters" ADD COLUMN "replicated" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "task_counters" ADD COLUMN "disagreements" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "task_counters" ADD COLUMN "banned" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
INSERT INTO "task_counters" (task_id, shard, copies, replicated)
  SELECT task_id, 0, count(*), count(DISTINCT idx) FROM "votes" GROUP BY task_id
  ON CONFLICT (task_id, shard) DO UPDATE SET copies = excluded.copies, replicated = excluded.replicated;
