-- Bounds on what one volunteer holds (docs/architecture.md, "Bounds on what one volunteer
-- holds"): each lease row says the anonymous source it went to and the latest deadline a
-- heartbeat may give it; two partial indexes read what a volunteer and a source hold now.
ALTER TABLE "leases" ADD COLUMN "source" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "latest" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "leases_held_volunteer_idx" ON "leases" USING btree ("volunteer_id") WHERE NOT reclaimed;--> statement-breakpoint
CREATE INDEX "leases_held_source_idx" ON "leases" USING btree ("source") WHERE NOT reclaimed AND source IS NOT NULL;