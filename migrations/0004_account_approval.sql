ALTER TABLE "users" ADD COLUMN "approved_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "suspended_at" timestamp with time zone;--> statement-breakpoint
-- Accounts that exist already were admitted under the old rules.
UPDATE "users" SET "approved_at" = "created_at";
