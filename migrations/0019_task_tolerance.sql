-- Replicated tasks may compare copies within a tolerance for numbers, `{abs?, rel?}`; null
-- (every task so far) keeps exact agreement (docs/architecture.md, "Replication, trust and reduce").
ALTER TABLE "tasks" ADD COLUMN "tolerance" jsonb;
