CREATE TABLE "chunk_inputs" (
	"task_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"input" text NOT NULL,
	CONSTRAINT "chunk_inputs_task_id_idx_pk" PRIMARY KEY("task_id","idx")
);
--> statement-breakpoint
CREATE TABLE "chunk_state" (
	"task_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"status" text NOT NULL,
	"lease_id" bigint,
	"attempts" integer DEFAULT 0 NOT NULL,
	"expiries" integer DEFAULT 0 NOT NULL,
	"last_error" jsonb,
	CONSTRAINT "chunk_state_task_id_idx_pk" PRIMARY KEY("task_id","idx")
);
--> statement-breakpoint
CREATE TABLE "leases" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"task_id" uuid NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"first_idx" integer NOT NULL,
	"n" smallint NOT NULL,
	"copy" smallint DEFAULT 0 NOT NULL,
	"reported" bigint DEFAULT 0 NOT NULL,
	"reclaimed" boolean DEFAULT false NOT NULL,
	"deadline" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "results" (
	"task_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"result" text NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"cpu_ms" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "results_task_id_idx_pk" PRIMARY KEY("task_id","idx")
);
--> statement-breakpoint
CREATE TABLE "stripes" (
	"task_id" uuid NOT NULL,
	"stripe" smallint NOT NULL,
	"next_idx" integer NOT NULL,
	"end_idx" integer NOT NULL,
	CONSTRAINT "stripes_task_id_stripe_pk" PRIMARY KEY("task_id","stripe")
);
--> statement-breakpoint
CREATE TABLE "task_counters" (
	"task_id" uuid NOT NULL,
	"shard" smallint NOT NULL,
	"done" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	"cpu_ms" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "task_counters_task_id_shard_pk" PRIMARY KEY("task_id","shard")
);
--> statement-breakpoint
CREATE TABLE "tasks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"code" text NOT NULL,
	"code_sha256" text NOT NULL,
	"wasm" "bytea",
	"wasm_sha256" text,
	"status" text NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"replication" integer DEFAULT 1 NOT NULL,
	"quorum" integer DEFAULT 1 NOT NULL,
	"timeout_ms" integer DEFAULT 60000 NOT NULL,
	"max_attempts" integer DEFAULT 5 NOT NULL,
	"max_expiries" integer DEFAULT 20 NOT NULL,
	"requires" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"allow_users" jsonb,
	"input_kind" text NOT NULL,
	"range" jsonb,
	"total" integer NOT NULL,
	"sealed" boolean NOT NULL,
	"last_error" jsonb,
	"aggregate" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"password_hash" text NOT NULL,
	"role" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_email_unique" UNIQUE("email")
);
--> statement-breakpoint
CREATE TABLE "volunteers" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "chunk_inputs" ADD CONSTRAINT "chunk_inputs_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "stripes" ADD CONSTRAINT "stripes_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volunteers" ADD CONSTRAINT "volunteers_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "chunk_state_pending_idx" ON "chunk_state" USING btree ("task_id","idx") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "leases_live_deadline_idx" ON "leases" USING btree ("deadline") WHERE NOT reclaimed;--> statement-breakpoint
CREATE INDEX "leases_task_idx" ON "leases" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "results_task_created_idx" ON "results" USING btree ("task_id","created_at");--> statement-breakpoint
CREATE INDEX "tasks_running_idx" ON "tasks" USING btree ("priority","created_at") WHERE status = 'running';--> statement-breakpoint
CREATE INDEX "tasks_owner_idx" ON "tasks" USING btree ("owner_id","created_at");