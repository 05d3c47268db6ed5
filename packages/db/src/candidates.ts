import { sql } from "drizzle-orm";
import { queryRows, type Db } from "./db.ts";
import type { RangeSpec } from "./tasks.ts";

/** A running task a volunteer may be served, with what leasing from it needs. */
export type Candidate = {
  id: string;
  owner_id: string;
  input_kind: "array" | "range" | "ndjson";
  range: RangeSpec | null;
  timeout_ms: number;
  code_sha256: string;
  wasm_sha256: string | null;
  replication: number;
  requires: { webgpu?: boolean };
  total: number;
};

export interface CandidateFilter {
  userId: string | null;
  webgpu: boolean;
  excludeTasks: readonly string[];
  excludeCreators: readonly string[];
}

const candidateLimit = 16;

// Every lease request needs the tasks it may be served, in turn order: a query per request
// is a round trip of three. This process keeps each filter's answer for 100 ms, rotating
// creators it served to the back itself (as the shared turn order would), and the lease
// statements check that a cached task is still running, so a pause stops leases at once.
const cacheMs = 100;
const maxCachedFilters = 1000;
let generation = 0;
const caches = new WeakMap<Db, Cache>();
const inFlight = new WeakMap<Db, Map<string, { generation: number; tasks: Promise<Candidate[]> }>>();

/** Drops every cached answer of this process: a task started, resumed or was created. */
export function candidateTasksChanged(): void {
  generation++;
}

const keyOf = (filter: CandidateFilter) => JSON.stringify([filter.userId, filter.webgpu, filter.excludeTasks, filter.excludeCreators]);

/**
 * The running tasks a volunteer may run, creators in turn (least recently served first) and
 * a creator's own tasks by priority. `fromCache` says whether the answer may be up to 100 ms
 * old; a caller that got nothing from such an answer asks again with `fresh`.
 */
export async function candidateTasks(db: Db, filter: CandidateFilter, { fresh = false } = {}): Promise<{ tasks: Candidate[]; fromCache: boolean }> {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new Map()));
  const key = keyOf(filter);
  const hit = cache.get(key);
  if (!fresh && hit && hit.generation === generation && hit.at > Date.now() - cacheMs) return { tasks: hit.tasks, fromCache: true };
  // Requests that find the answer expired together share one query instead of each sending
  // their own (16 volunteers sent ~7 per expiry).
  let queries = inFlight.get(db);
  if (!queries) inFlight.set(db, (queries = new Map()));
  const running = queries.get(key);
  if (!fresh && running && running.generation === generation) return { tasks: await running.tasks, fromCache: true };
  const query = { generation, tasks: queryCandidates(db, filter, key, cache) };
  queries.set(key, query);
  try {
    return { tasks: await query.tasks, fromCache: false };
  } finally {
    if (queries.get(key) === query) queries.delete(key);
  }
}

type Cache = Map<string, { at: number; generation: number; tasks: Candidate[] }>;

async function queryCandidates(db: Db, filter: CandidateFilter, key: string, cache: Cache): Promise<Candidate[]> {
  const startedIn = generation;
  const tasks = await queryRows<Candidate>(
    db,
    sql`SELECT t.id, t.owner_id, t.input_kind, t.range, t.timeout_ms, t.code_sha256, t.wasm_sha256, t.replication, t.requires, t.total
        FROM tasks t LEFT JOIN creator_turns ct ON ct.owner_id = t.owner_id
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
export function rotateServedCreators(db: Db, filter: CandidateFilter, served: ReadonlySet<string>): void {
  const hit = caches.get(db)?.get(keyOf(filter));
  if (!hit || served.size === 0) return;
  hit.tasks = [...hit.tasks.filter((t) => !served.has(t.owner_id)), ...hit.tasks.filter((t) => served.has(t.owner_id))];
}
