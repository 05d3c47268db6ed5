-- A resumed chunk is only as trusted as its checkpoint (docs/architecture.md, "Progress,
-- console and checkpoints"): a checkpoint keeps the lease that sent it, and a result finished
-- from another volunteer's checkpoint names that volunteer, which answers for the state it
-- handed on and is credited the time it ran. Checkpoints kept before this have no author.
ALTER TABLE "chunk_live" ADD COLUMN "checkpoint_lease_id" bigint;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "checkpoint_by" uuid;
