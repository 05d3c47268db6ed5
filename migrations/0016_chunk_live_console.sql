-- Chunk progress and checkpoints (chunk_live, written by heartbeats, gone when the chunk is final) and
-- console output of chunks that wrote any (chunk_console), kept apart from results.
CREATE TABLE "chunk_console" (
	"task_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"outcome" text NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"lines" text NOT NULL,
	"truncated" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	CONSTRAINT "chunk_console_task_id_idx_pk" PRIMARY KEY("task_id","idx")
);
--> statement-breakpoint
CREATE TABLE "chunk_live" (
	"task_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"lease_id" bigint,
	"fraction" real,
	"message" text,
	"progress_at" timestamp with time zone,
	"checkpoint" text,
	"checkpoint_at" timestamp with time zone,
	CONSTRAINT "chunk_live_task_id_idx_pk" PRIMARY KEY("task_id","idx")
);
--> statement-breakpoint
CREATE INDEX "chunk_console_task_decided_idx" ON "chunk_console" USING btree ("task_id","decided_xid","idx");