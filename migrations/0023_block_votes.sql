-- Votes by the block (docs/architecture.md, "Replication, trust and reduce"): a replicated
-- block reported whole is voted on as one row a copy (block_votes) with one state row
-- (block_state), so copies that agree decide the whole block in a constant number of rows.
CREATE TABLE "block_state" (
	"task_id" uuid NOT NULL,
	"first_idx" integer NOT NULL,
	"n" smallint NOT NULL,
	"needed" smallint NOT NULL,
	"copies_out" smallint DEFAULT 0 NOT NULL,
	"votes_in" smallint DEFAULT 0 NOT NULL,
	CONSTRAINT "block_state_task_id_first_idx_pk" PRIMARY KEY("task_id","first_idx")
);
--> statement-breakpoint
CREATE TABLE "block_votes" (
	"task_id" uuid NOT NULL,
	"first_idx" integer NOT NULL,
	"n" smallint NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"user_id" uuid,
	"hash" text NOT NULL,
	"results" text NOT NULL,
	"cpu_ms" bigint NOT NULL,
	"claim" bigint NOT NULL,
	"trusted" boolean NOT NULL,
	"counted" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "block_votes_task_id_first_idx_volunteer_id_pk" PRIMARY KEY("task_id","first_idx","volunteer_id")
);
--> statement-breakpoint
CREATE INDEX "block_state_open_copies_idx" ON "block_state" USING btree ("task_id","first_idx") WHERE copies_out + votes_in < needed;--> statement-breakpoint
CREATE UNIQUE INDEX "block_votes_user_once_idx" ON "block_votes" USING btree ("task_id","first_idx","user_id") WHERE user_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "block_votes_volunteer_idx" ON "block_votes" USING btree ("volunteer_id");