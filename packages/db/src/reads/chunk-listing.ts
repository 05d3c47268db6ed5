// A task's chunks, one page at a time, for `GET /api/tasks/:id/chunks`. Fresh chunks are
// never rows (docs/architecture.md, "The database"), so a chunk's status is derived, in this
// precedence:
//   a `results` row                           -> done
//   a `block_state` row covering it (a block under vote as a whole) -> voting
//   a `chunk_state` row: failed | voting | pending
//   a `chunk_state` row: leased               -> leased while its lease is live, else pending
//   no row, inside a live block lease that has not reported it -> leased
//   anything else (fresh in a stripe, an expired lease awaiting reclaim) -> pending
// "Live" matches the task's counts (`leased` in tasks.ts): a copy-0 lease, not reclaimed,
// before its deadline, in a running or paused task.
//
// A page never reads more than it returns, give or take: each status filter has a source of
// candidate indexes that is ordered by index and cut at the page size, and every candidate is
// then classified by the rules above (index probes on results, chunk_state and leases).

import type { ChunkStatus } from "@crowdcompute/contract/statuses";
import { type SQL, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { maxRowChunks } from "../sql/result-rows.ts";
import { type RangeSpec, rangeChunkInput, type TaskStatus } from "../tasks/tasks.ts";

export type { ChunkStatus };

/** One copy of a replicated chunk that came back (replication 1 keeps none). */
export interface ChunkVote {
  volunteerId: string;
  /** The name the volunteer chose (never an email). */
  volunteerName: string | null;
  /** The first characters of the server's sha256 of the result's canonical JSON (of the block's array, for a block voted whole). */
  hashPrefix: string;
  /** Whether it matches the accepted result; null while the chunk has none. */
  agrees: boolean | null;
  at: Date;
}

export interface ChunkListing {
  index: number;
  /** The chunk's input as JSON text. */
  input: string;
  status: ChunkStatus;
  /** Errors and timeouts counted toward maxAttempts; null once done (completion drops the chunk's own row). */
  attempts: number | null;
  /** Leases that expired on it (vanished volunteers), counted apart; null once done. */
  expiries: number | null;
  votes: ChunkVote[];
  /**
   * A chunk under vote: the copies it needs so far (the task's replication, one more per
   * disagreement); its free slots go to volunteers that have not voted on it. Null otherwise.
   */
  copiesNeeded: number | null;
  /** A chunk under vote: what it waits for (see `WaitingFor`); null otherwise. */
  waitingFor: WaitingFor | null;
  lastError: { kind: string; message: string } | null;
  /** A leased chunk whose volunteer sent `ctx.progress`: the latest; null otherwise. */
  progress: { fraction: number; message: string | null; at: Date } | null;
  /** When an attempt last checkpointed the chunk (a retry resumes from it); null when it has no checkpoint. */
  checkpointAt: Date | null;
  /** What the chunk wrote to its console, for a chunk whose deciding or latest failed attempt wrote any. */
  console: { outcome: "done" | "error"; lines: { level: string; text: string }[]; truncated: boolean; at: Date } | null;
}

/**
 * What a chunk under vote waits for, by the trust rules (docs/architecture.md, "Replication,
 * trust and reduce"): it is decided only by `quorum` agreeing counted votes with a trusted one
 * among them, and each copy goes to a volunteer (and user) that has not voted on it.
 * - `trustedCopy`: `agreeing` untrusted votes agree (a quorum or more) and wait for a trusted
 *   volunteer's copy: more untrusted ones cannot decide it;
 * - `moreCopies`: `moreAgreeing` more copies agreeing with the largest side (`agreeing`) would
 *   decide it (one of them trusted, if none on that side is);
 * - `firstCopy`: no copy has come back yet.
 * `copiesOut` copies are being computed now.
 */
export interface WaitingFor {
  reason: "trustedCopy" | "moreCopies" | "firstCopy";
  agreeing: number;
  moreAgreeing: number;
  copiesOut: number;
}

export interface ChunkPage {
  items: ChunkListing[];
  /** Pass as `after` for the next page; null when there is none. */
  nextAfter: number | null;
}

const hashPrefixLength = 12;

type TaskRow = { id: string; input_kind: string; range: RangeSpec | null; total: number; status: TaskStatus; quorum: number };
type Row = {
  idx: number;
  status: ChunkStatus;
  wanted: boolean;
  block_decided: boolean | null;
  block_first: number | null;
  attempts: number | null;
  expiries: number | null;
  needed: number | null;
  copies_out: number | null;
  side: { n: number; trusted: boolean } | null;
  last_error: { kind: string; message: string } | null;
  input: string | null;
  votes: { volunteer_id: string; name: string | null; hash: string; agrees: boolean | null; at: string }[] | null;
  live: { fraction: number | null; message: string | null; progress_at: string | null; live: boolean; checkpoint_at: string | null } | null;
  console: { outcome: "done" | "error"; lines: { level: string; text: string }[]; truncated: boolean; at: string } | null;
};

/**
 * A page of a task's chunks after index `after`, in index order, optionally only those with
 * one status; null when the task does not exist. Reduce chunks (indexes past `total`) are
 * the platform's, not the creator's: never listed.
 *
 * What each filter reads (see the route's description for the public version):
 * - none: the window of indexes (after, after + limit], dense, so every page is full;
 * - done: `results` by primary key; failed, voting: `chunk_state` rows of that status;
 * - pending: retries (`chunk_state`), fresh indexes cut from the stripes (never more than a
 *   page of them), and chunks of expired leases not yet reclaimed;
 * - leased: retries on a lease and the live block leases (the chunks in flight).
 * Pending misses one case the unfiltered listing shows as pending: chunks that were out on a
 * lease when the task was cancelled (no row records them once the lease is reclaimed).
 */
export async function listChunks(db: Db, taskId: string, options: { status: ChunkStatus | null; after: number; limit: number }): Promise<ChunkPage | null> {
  const [task] = await queryRows<TaskRow>(db, sql`SELECT id, input_kind, range, total, status, quorum FROM tasks WHERE id = ${taskId}`);
  if (!task) return null;
  const { status, limit } = options;
  const after = Math.max(-1, options.after);
  const take = limit + 1; // one more than a page says whether another page follows
  const live = task.status === "running" || task.status === "paused";
  const window = { taskId, total: task.total, after, take, live };
  const candidates = status === null ? denseWindow(window) : candidateSources[status](window);
  const rows = await queryRows<Row>(
    db,
    sql`WITH cand AS (
          SELECT DISTINCT idx FROM (${candidates}) c WHERE idx > ${after} AND idx < ${task.total} ORDER BY idx LIMIT ${take}
        ), classified AS (
          SELECT c.idx, cs.attempts, cs.expiries, coalesce(bs.needed, cs.needed) AS needed, coalesce(bs.copies_out, cs.copies_out) AS copies_out,
            cs.last_error, r.hash AS result_hash, (r.idx IS NOT NULL) AS done, r.n > 1 AND bv.one IS NOT NULL AS block_decided, bs.first_idx AS block_first,
            CASE WHEN r.idx IS NOT NULL THEN 'done'
                 WHEN bs.first_idx IS NOT NULL THEN 'voting'
                 WHEN cs.status IN ('failed', 'voting', 'pending') THEN cs.status
                 WHEN cs.status = 'leased' THEN
                   CASE WHEN EXISTS (SELECT 1 FROM leases l WHERE l.id = cs.lease_id AND ${liveLease(live)}) THEN 'leased' ELSE 'pending' END
                 WHEN EXISTS (
                   -- A block holds at most maxRowChunks chunks: a bounded probe.
                   SELECT 1 FROM leases l
                   WHERE l.task_id = ${taskId} AND l.first_idx <= c.idx AND l.first_idx > c.idx - ${maxRowChunks}::int
                     AND c.idx < l.first_idx + l.n AND l.copy = 0 AND ${liveLease(live)}
                     AND get_bit(l.reported, c.idx - l.first_idx) = 0) THEN 'leased'
                 ELSE 'pending' END AS status
          FROM cand c
          -- The result row covering the chunk, if any: the last one starting at or before it.
          LEFT JOIN LATERAL (SELECT * FROM (SELECT r.idx, r.n, r.hash FROM results r WHERE r.task_id = ${taskId} AND r.idx <= c.idx
                                            ORDER BY r.idx DESC LIMIT 1) r0 WHERE r0.idx + r0.n > c.idx) r ON true
          LEFT JOIN chunk_state cs ON cs.task_id = ${taskId} AND cs.idx = c.idx
          -- A block under vote as a whole covering the chunk (one state row a block), and whether
          -- a block result row was decided by block votes (block-votes.ts).
          LEFT JOIN LATERAL (SELECT * FROM (SELECT b.first_idx, b.n, b.needed, b.copies_out FROM block_state b WHERE b.task_id = ${taskId} AND b.first_idx <= c.idx
                                            ORDER BY b.first_idx DESC LIMIT 1) b0 WHERE b0.first_idx + b0.n > c.idx) bs ON r.idx IS NULL
          LEFT JOIN LATERAL (SELECT 1 AS one FROM block_votes v WHERE v.task_id = ${taskId} AND v.first_idx = r.idx AND r.n > 1 LIMIT 1) bv ON true
        ), page AS (
          SELECT k.*, ${status === null ? sql`true` : sql`k.status = ${status}`} AS wanted FROM classified k
        )
        -- Inputs and votes by scalar subquery: index probes per listed chunk, in any plan (see lease.ts).
        SELECT p.idx, p.status, p.wanted,
          CASE WHEN p.done THEN NULL ELSE coalesce(p.attempts, 0) END AS attempts,
          CASE WHEN p.done THEN NULL ELSE coalesce(p.expiries, 0) END AS expiries,
          CASE WHEN p.done THEN NULL ELSE p.last_error END AS last_error,
          CASE WHEN p.status = 'voting' THEN p.needed END AS needed,
          CASE WHEN p.status = 'voting' THEN p.copies_out END AS copies_out,
          -- A voting chunk's largest side of counted votes (a trusted side first among equals),
          -- as votes.ts tallies it: what it still waits for follows from it and the quorum.
          CASE WHEN p.wanted AND p.status = 'voting' AND p.block_first IS NOT NULL THEN (
            -- a block's counted votes all agree: one side
            SELECT json_build_object('n', count(*)::int, 'trusted', coalesce(bool_or(v.trusted), false)) FROM block_votes v
            WHERE v.task_id = ${taskId} AND v.first_idx = p.block_first AND v.counted)
               WHEN p.wanted AND p.status = 'voting' THEN (
            SELECT json_build_object('n', s.n, 'trusted', s.trusted) FROM (
              SELECT count(*)::int AS n, bool_or(v.trusted) AS trusted FROM votes v
              WHERE v.task_id = ${taskId} AND v.idx = p.idx AND v.counted
              GROUP BY v.hash ORDER BY count(*) DESC, bool_or(v.trusted) DESC LIMIT 1) s) END AS side,
          CASE WHEN p.wanted THEN (SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = ${taskId} AND ci.idx = p.idx) END AS input,
          CASE WHEN p.wanted AND (p.block_first IS NOT NULL OR p.block_decided) THEN (
            -- a block's votes, hashed as a block; every counted one of a decided block agreed
            SELECT json_agg(json_build_object('volunteer_id', v.volunteer_id, 'name', vo.name, 'hash', v.hash,
                                              'agrees', CASE WHEN p.result_hash IS NULL THEN NULL ELSE v.counted END,
                                              'at', v.created_at) ORDER BY v.created_at, v.volunteer_id)
            FROM block_votes v LEFT JOIN volunteers vo ON vo.id = v.volunteer_id
            WHERE v.task_id = ${taskId} AND v.first_idx = coalesce(p.block_first, (SELECT r.idx FROM results r WHERE r.task_id = ${taskId} AND r.idx <= p.idx ORDER BY r.idx DESC LIMIT 1)))
               WHEN p.wanted THEN (
            SELECT json_agg(json_build_object('volunteer_id', v.volunteer_id, 'name', vo.name, 'hash', v.hash,
                                              'agrees', CASE WHEN p.result_hash IS NULL THEN NULL ELSE v.hash = p.result_hash END,
                                              'at', v.created_at) ORDER BY v.created_at, v.volunteer_id)
            FROM votes v LEFT JOIN volunteers vo ON vo.id = v.volunteer_id
            WHERE v.task_id = ${taskId} AND v.idx = p.idx) END AS votes,
          -- Progress counts while its lease still holds the chunk unreported (schema.ts, chunk_live).
          CASE WHEN p.wanted AND NOT p.done THEN (
            SELECT json_build_object('fraction', cl.fraction, 'message', cl.message, 'progress_at', cl.progress_at, 'checkpoint_at', cl.checkpoint_at,
                                     'live', p.status = 'leased' AND coalesce((SELECT NOT l.reclaimed AND get_bit(l.reported, cl.idx - l.first_idx) = 0
                                                                               FROM leases l WHERE l.id = cl.lease_id), false))
            FROM chunk_live cl WHERE cl.task_id = ${taskId} AND cl.idx = p.idx) END AS live,
          CASE WHEN p.wanted THEN (
            SELECT json_build_object('outcome', cc.outcome, 'lines', cc.lines::json, 'truncated', cc.truncated, 'at', cc.created_at)
            FROM chunk_console cc WHERE cc.task_id = ${taskId} AND cc.idx = p.idx) END AS console
        FROM page p ORDER BY p.idx`,
  );
  const examined = rows.slice(0, limit);
  const items = examined.filter((row) => row.wanted).map((row) => toListing(task, row));
  return { items, nextAfter: rows.length > limit ? examined[examined.length - 1]!.idx : null };
}

type Window = { taskId: string; total: number; after: number; take: number; live: boolean };

const liveLease = (live: boolean) => (live ? sql`NOT l.reclaimed AND l.deadline > now()` : sql`false`);

/** Every index of the next page: chunks are the dense range [0, total). */
function denseWindow(w: Window): SQL {
  return sql`SELECT generate_series(${w.after + 1}::int, least(${w.total}::int - 1, ${w.after + w.take}::int)) AS idx`;
}

/**
 * The chunks a set of copy-0 leases holds and has not reported, after the cursor. Only the
 * first page of leases that still hold such a chunk is expanded (unreported chunks of
 * copy-0 leases that are not reclaimed never overlap: a retry's lease exists only once the
 * block was reclaimed or had reported the chunk), so a finished task whose leases all wait
 * for the sweep costs a scan of its lease rows, not of its chunks. Expanding every lease
 * first also misled the planner (1000 rows per generate_series) into JIT: 130 ms, not 8.
 */
function leasedChunks(w: Window, which: SQL): SQL {
  const from = sql`greatest(0, ${w.after + 1}::int - l.first_idx)`;
  return sql`(SELECT l.first_idx + o AS idx
              FROM (SELECT l.first_idx, l.n, l.reported FROM leases l
                    WHERE l.task_id = ${w.taskId} AND l.copy = 0 AND ${which}
                      AND l.first_idx + l.n > ${w.after + 1}::int AND l.first_idx < ${w.total}::int
                      AND position(B'0' in substring(l.reported from ${from} + 1)) > 0
                    ORDER BY l.first_idx LIMIT ${w.take}) l
              CROSS JOIN LATERAL generate_series(${from}, l.n - 1) AS o
              WHERE get_bit(l.reported, o) = 0 AND l.first_idx + o < ${w.total}::int
              ORDER BY idx LIMIT ${w.take})`;
}

function stateRows(w: Window, statuses: readonly string[]): SQL {
  return sql`(SELECT idx FROM chunk_state WHERE task_id = ${w.taskId} AND status IN ${statuses}
                AND idx > ${w.after} AND idx < ${w.total} ORDER BY idx LIMIT ${w.take})`;
}

/**
 * Fresh chunks: the untouched part [next_idx, end_idx) of each of the task's own stripes
 * (reduce levels have negative stripe numbers). The ranges are disjoint, so the first page
 * of them comes from the stripes whose earlier ranges hold fewer than a page.
 */
function freshChunks(w: Window): SQL {
  return sql`(WITH open AS (
                SELECT greatest(next_idx, ${w.after + 1}::int) AS from_idx, least(end_idx, ${w.total}::int) AS to_idx
                FROM stripes WHERE task_id = ${w.taskId} AND stripe >= 0
              ), ranked AS (
                SELECT from_idx, to_idx, (sum(to_idx - from_idx) OVER (ORDER BY from_idx) - (to_idx - from_idx))::int AS before
                FROM open WHERE to_idx > from_idx
              )
              SELECT generate_series(from_idx, least(to_idx, from_idx + ${w.take}::int - before) - 1) AS idx
              FROM ranked WHERE before < ${w.take})`;
}

const candidateSources: Record<ChunkStatus, (w: Window) => SQL> = {
  // Rows in index order, each at least one chunk: a page's worth of rows is enough, and
  // their chunks are counted out without parsing a block's results.
  done: (w) =>
    sql`(SELECT r.idx + o AS idx
         FROM (SELECT idx, n FROM results WHERE task_id = ${w.taskId} AND idx + n > ${w.after + 1}::int AND idx > ${w.after}::int - ${maxRowChunks}::int
                 AND idx < ${w.total} ORDER BY idx LIMIT ${w.take}) r
         CROSS JOIN LATERAL generate_series(0, r.n - 1) AS o
         WHERE r.idx + o > ${w.after} ORDER BY 1 LIMIT ${w.take})`,
  failed: (w) => stateRows(w, ["failed"]),
  // chunks under vote one by one, and those of blocks under vote as a whole (one row a block)
  voting: (w) =>
    sql`${stateRows(w, ["voting"])} UNION ALL (SELECT b.first_idx + o AS idx FROM (
          SELECT first_idx, n FROM block_state WHERE task_id = ${w.taskId} AND first_idx + n > ${w.after + 1}::int AND first_idx < ${w.total}::int
          ORDER BY first_idx LIMIT ${w.take}) b CROSS JOIN LATERAL generate_series(0, b.n - 1) AS o
        WHERE b.first_idx + o > ${w.after} ORDER BY 1 LIMIT ${w.take})`,
  leased: (w) => (w.live ? sql`${stateRows(w, ["leased"])} UNION ALL ${leasedChunks(w, liveLease(true))}` : sql`SELECT NULL::int AS idx WHERE false`),
  // A retry's lease may have lapsed ('leased' rows), and an expired block lease waits for the
  // next lease request to reclaim it: both are pending until then, as the task's counts say.
  pending: (w) =>
    sql`${stateRows(w, ["pending", "leased"])} UNION ALL ${freshChunks(w)}
        UNION ALL ${leasedChunks(w, w.live ? sql`NOT l.reclaimed AND l.deadline <= now()` : sql`NOT l.reclaimed`)}`,
};

function toListing(task: TaskRow, row: Row): ChunkListing {
  const input = task.input_kind === "range" && task.range ? JSON.stringify(rangeChunkInput(task.range, row.idx)) : (row.input ?? "null");
  return {
    index: row.idx,
    input,
    status: row.status,
    attempts: row.attempts === null ? null : Number(row.attempts),
    expiries: row.expiries === null ? null : Number(row.expiries),
    lastError: row.last_error,
    copiesNeeded: row.needed === null ? null : Number(row.needed),
    waitingFor: row.status === "voting" ? waitingFor(row, Number(task.quorum)) : null,
    progress:
      row.live?.live && row.live.fraction !== null && row.live.progress_at !== null ? { fraction: Number(row.live.fraction), message: row.live.message, at: new Date(row.live.progress_at) } : null,
    checkpointAt: row.live?.checkpoint_at ? new Date(row.live.checkpoint_at) : null,
    console: row.console ? { outcome: row.console.outcome, lines: row.console.lines, truncated: row.console.truncated, at: new Date(row.console.at) } : null,
    votes: (row.votes ?? []).map((vote) => ({
      volunteerId: vote.volunteer_id,
      volunteerName: vote.name,
      hashPrefix: vote.hash.slice(0, hashPrefixLength),
      agrees: vote.agrees,
      at: new Date(vote.at),
    })),
  };
}

/** What a voting chunk waits for, from its largest side and the task's quorum (see `WaitingFor`). */
function waitingFor(row: Row, quorum: number): WaitingFor {
  const copiesOut = Number(row.copies_out ?? 0);
  const agreeing = row.side ? Number(row.side.n) : 0;
  if (agreeing === 0) return { reason: "firstCopy", agreeing: 0, moreAgreeing: quorum, copiesOut };
  if (agreeing >= quorum && !row.side?.trusted) return { reason: "trustedCopy", agreeing, moreAgreeing: 1, copiesOut };
  return { reason: "moreCopies", agreeing, moreAgreeing: Math.max(1, quorum - agreeing), copiesOut };
}
