CREATE TABLE "votes" (
	"task_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"user_id" uuid,
	"hash" text NOT NULL,
	"result" text NOT NULL,
	"cpu_ms" integer NOT NULL,
	"claim" integer NOT NULL,
	"trusted" boolean NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "votes_task_id_idx_volunteer_id_pk" PRIMARY KEY("task_id","idx","volunteer_id")
);
--> statement-breakpoint
DROP INDEX "leases_task_idx";--> statement-breakpoint
ALTER TABLE "chunk_state" ADD COLUMN "needed" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "chunk_state" ADD COLUMN "copies_out" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "hash" text;--> statement-breakpoint
ALTER TABLE "task_counters" ADD COLUMN "credit" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "volunteer_counters" ADD COLUMN "credit" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "volunteers" ADD COLUMN "trusted" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "volunteers" ADD COLUMN "wins" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "votes_user_once_idx" ON "votes" USING btree ("task_id","idx","user_id") WHERE user_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "leases_task_idx" ON "leases" USING btree ("task_id","first_idx");