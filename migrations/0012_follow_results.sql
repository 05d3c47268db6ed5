-- Following results (docs/architecture.md, Following results): every results row, and every
-- chunk_state row when it becomes failed, carries the id of the transaction that wrote it.
-- Existing rows get 0, older than any transaction, without rewriting the table (a constant
-- default is stored once); new rows get their transaction's id from the default.
ALTER TABLE "chunk_state" ADD COLUMN "decided_xid" "xid8";--> statement-breakpoint
UPDATE "chunk_state" SET "decided_xid" = '0' WHERE "status" = 'failed';--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "decided_xid" "xid8" DEFAULT '0' NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ALTER COLUMN "decided_xid" SET DEFAULT pg_current_xact_id();--> statement-breakpoint
CREATE INDEX "chunk_state_failed_decided_idx" ON "chunk_state" USING btree ("task_id","decided_xid","idx") WHERE status = 'failed';--> statement-breakpoint
CREATE INDEX "results_task_decided_idx" ON "results" USING btree ("task_id","decided_xid","idx");--> statement-breakpoint
-- Hand-written (drizzle-kit knows no triggers): a chunk becomes failed in several statements
-- (submit-chunks, expire, votes), so the stamp is a trigger rather than a column each of them
-- names. It fires only on the change to failed: a failed row updated again keeps its stamp,
-- and so is followed once; one failed again after a retry gets a new one.
CREATE FUNCTION stamp_failed_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.decided_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER chunk_state_failed_insert BEFORE INSERT ON chunk_state
  FOR EACH ROW WHEN (NEW.status = 'failed') EXECUTE FUNCTION stamp_failed_chunk();--> statement-breakpoint
CREATE TRIGGER chunk_state_failed_update BEFORE UPDATE ON chunk_state
  FOR EACH ROW WHEN (NEW.status = 'failed' AND OLD.status IS DISTINCT FROM 'failed') EXECUTE FUNCTION stamp_failed_chunk();
