-- Trust is earned only from wins shared with vouching volunteers (an admin's, or one that earned
-- trust; never a task owner's own on its task): a volunteer counts such wins and keeps up to 3
-- distinct vouchers, so promotion reads two columns instead of scanning its votes.
-- Probationers start counting from here; trusted volunteers stay trusted.
ALTER TABLE "volunteers" ADD COLUMN "vouched_wins" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "volunteers" ADD COLUMN "vouchers" uuid[] DEFAULT '{}'::uuid[] NOT NULL;
