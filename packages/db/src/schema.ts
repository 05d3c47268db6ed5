// The tables described in docs/architecture.md, "The database".
// Fresh chunks are never stored one row each: a task's index
// space is cut into `stripes` that lessees advance, a lease covers a block of consecutive
// indexes, and `chunk_state` holds only the chunks that need their own state (a retry, a
// failure). Completed chunks are `results` rows, keyed (task_id, idx) for exactly-once.
// The hot tables (leases, results, chunk_state, task_counters) carry no foreign key to
// tasks: each FK check takes a KEY SHARE lock on the task row, and many concurrent
// submitters sharing one row's lock go through multixacts. Deleting a task deletes them.
// Split by what the tables are of: schema/accounts.ts, schema/tasks.ts, schema/work.ts.
export * from "./schema/accounts.ts";
export * from "./schema/tasks.ts";
export * from "./schema/work.ts";
