import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import type { DispatchCache } from "./dispatch-cache.ts";
import { dispatchCacheOf } from "./dispatch-cache.ts";
import type { Candidate } from "./lease-types.ts";

export interface CandidateFilter {
  userId: string | null;
  webgpu: boolean;
  excludeTasks: readonly string[];
  excludeCreators: readonly string[];
}

const candidateLimit = 16;

// Every lease request needs the tasks it may be served, in turn order: a query per request
// is a round trip of three. The database's dispatch cache keeps each filter's answer for 100 ms,
// rotating creators it served to the back itself (as the shared turn order would), and the
// lease statements check that a cached task is still running, so a pause stops leases at once.
const cacheMs = 100;
/** A fresh look takes an answer this recent as it is (a task started since bumps the generation). */
const freshMs = 25;
const maxCachedFilters = 1000;

/** Drops the cached answers of `db`'s dispatch cache: a task started, resumed or was created. */
export function candidateTasksChanged(db: Db): void {
  dispatchCacheOf(db).tasksChanged();
}

const keyOf = (filter: CandidateFilter) => JSON.stringify([filter.userId, filter.webgpu, filter.excludeTasks, filter.excludeCreators]);

/**
 * The running tasks a volunteer may run, creators in turn (least recently served first) and
 * a creator's own tasks by priority. `fromCache` says whether the answer may be up to 100 ms
 * old; a caller that got nothing from such an answer asks again with `fresh`.
 */
export async function candidateTasks(db: Db, dispatchCache: DispatchCache, filter: CandidateFilter, { fresh = false } = {}): Promise<{ tasks: Candidate[]; fromCache: boolean }> {
  const key = keyOf(filter);
  const hit = dispatchCache.candidates.get(key);
  if (!fresh && hit && hit.generation === dispatchCache.generation && hit.at > Date.now() - cacheMs) return { tasks: hit.tasks, fromCache: true };
  // Requests that find the answer expired together share one query instead of each sending
  // their own (16 volunteers sent ~7 per expiry).
  const queries = dispatchCache.candidateQueries;
  const running = queries.get(key);
  if (!fresh && running && running.generation === dispatchCache.generation) return { tasks: await running.tasks, fromCache: true };
  // A fresh look (the cached answer gave no work) shares a query begun after that answer was
  // read, and takes an answer read in the last 25 ms as it is: 10,000 waiting volunteers that
  // ask again together once sent a query each, and the pool's queue held other requests ~20 s.
  if (fresh && hit && hit.generation === dispatchCache.generation) {
    if (hit.at > Date.now() - freshMs) return { tasks: hit.tasks, fromCache: false };
    if (running && running.generation === dispatchCache.generation && running.startedAt >= hit.at) return { tasks: await running.tasks, fromCache: false };
  }
  const query = { generation: dispatchCache.generation, startedAt: Date.now(), tasks: queryCandidates(db, dispatchCache, filter, key) };
  queries.set(key, query);
  try {
    return { tasks: await query.tasks, fromCache: false };
  } finally {
    if (queries.get(key) === query) queries.delete(key);
  }
}

async function queryCandidates(db: Db, dispatchCache: DispatchCache, filter: CandidateFilter, key: string): Promise<Candidate[]> {
  const cache = dispatchCache.candidates;
  const startedIn = dispatchCache.generation;
  const tasks = await queryRows<Candidate>(
    db,
    sql`SELECT t.id, t.owner_id, t.input_kind, t.range, t.timeout_ms, t.memory_mb, t.code_sha256, t.wasm_sha256, t.replication, t.spot_check, t.requires, t.total,
               tc.measured, tc.mean_chunk_ms, t.input_bytes::float8 / greatest(t.total, 1) AS mean_input_bytes
        FROM tasks t LEFT JOIN creator_turns ct ON ct.owner_id = t.owner_id
        -- The task's running figure, from its counter shards: at most 16 rows by key.
        CROSS JOIN LATERAL (SELECT coalesce(sum(c.done), 0)::int AS measured, sum(c.cpu_ms)::float8 / nullif(sum(c.done), 0)::float8 AS mean_chunk_ms
                            FROM task_counters c WHERE c.task_id = t.id) tc
        WHERE t.status = 'running'
          AND (NOT coalesce((t.requires->>'webgpu')::boolean, false) OR ${filter.webgpu})
          AND (t.allow_users IS NULL OR t.allow_users ? ${filter.userId ?? ""})
          AND t.id NOT IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(filter.excludeTasks)}::json))
          AND t.owner_id NOT IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(filter.excludeCreators)}::json))
        ORDER BY ct.last_served_at ASC NULLS FIRST, t.owner_id, t.priority DESC, t.created_at
        LIMIT ${candidateLimit}`,
  );
  // Nothing to serve is not kept: idle volunteers ask rarely, and a new task must show at once.
  if (tasks.length === 0) cache.delete(key);
  else {
    if (cache.size >= maxCachedFilters) cache.clear();
    cache.set(key, { at: Date.now(), generation: startedIn, tasks });
  }
  return tasks;
}

/** Moves the creators just served behind the others in this filter's cached turn order. */
export function rotateServedCreators(dispatchCache: DispatchCache, filter: CandidateFilter, served: ReadonlySet<string>): void {
  const hit = dispatchCache.candidates.get(keyOf(filter));
  if (!hit || served.size === 0) return;
  hit.tasks = [...hit.tasks.filter((t) => !served.has(t.owner_id)), ...hit.tasks.filter((t) => served.has(t.owner_id))];
}
