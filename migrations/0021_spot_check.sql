-- Adaptive replication (docs/architecture.md, "Replication, trust and reduce"): a replicated
-- task's `spot_check` share of trusted volunteers' blocks is copied, the rest accepted on one
-- copy; 1 (every task so far) copies every block. `spot_seed` never leaves the server: with a
-- lease's id it picks which blocks are checked, so a volunteer cannot tell at lease time.
ALTER TABLE "tasks" ADD COLUMN "spot_check" real DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "spot_seed" text DEFAULT md5(random()::text || clock_timestamp()::text) NOT NULL;
