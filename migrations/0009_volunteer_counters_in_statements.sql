-- The statements that insert results (submit, a quorum's win) now move volunteer_counters'
-- done and cpu_ms themselves, in the upsert that already moves credit: the statement
-- trigger of 0001 cost every submission a PL/pgSQL call, a transition table and a second
-- update of the same row (measured: ~0.1 ms of a 1.3 ms 64-result submission).
DROP TRIGGER results_count_volunteer ON results;
--> statement-breakpoint
DROP FUNCTION count_volunteer_results();
