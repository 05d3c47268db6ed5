CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"key_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_key_hash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
CREATE TABLE "rate_limits" (
	"key" text PRIMARY KEY NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"hits" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "volunteer_counters" (
	"volunteer_id" uuid PRIMARY KEY NOT NULL,
	"done" integer DEFAULT 0 NOT NULL,
	"cpu_ms" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_keys_user_idx" ON "api_keys" USING btree ("user_id","created_at");--> statement-breakpoint
-- Hand-written (drizzle-kit knows no triggers): the leaderboard's per-volunteer counters.
-- A statement-level trigger sees only the rows an INSERT really added (ON CONFLICT DO
-- NOTHING leaves duplicates out of the transition table), so counters move exactly once,
-- with one upsert per submission rather than one per chunk.
CREATE FUNCTION count_volunteer_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO volunteer_counters AS vc (volunteer_id, done, cpu_ms, updated_at)
  SELECT volunteer_id, count(*), sum(cpu_ms), now() FROM inserted_results
  GROUP BY volunteer_id ORDER BY volunteer_id
  ON CONFLICT (volunteer_id) DO UPDATE
    SET done = vc.done + excluded.done, cpu_ms = vc.cpu_ms + excluded.cpu_ms, updated_at = excluded.updated_at;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER results_count_volunteer AFTER INSERT ON results
  REFERENCING NEW TABLE AS inserted_results
  FOR EACH STATEMENT EXECUTE FUNCTION count_volunteer_results();
--> statement-breakpoint
INSERT INTO volunteer_counters (volunteer_id, done, cpu_ms)
SELECT volunteer_id, count(*), sum(cpu_ms) FROM results GROUP BY volunteer_id;
