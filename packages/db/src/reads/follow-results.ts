// Following a task's results as they are decided (docs/architecture.md, Following results).
//
// Why not a timestamp or a sequence: both are taken before a transaction commits, so a row
// stamped 10:00:01 (or seq 41) can become visible after a reader has already read 10:00:02
// (seq 42) and moved its cursor past it; the row would never be read. Here each row carries
// the id of the transaction that wrote it (`decided_xid`: results by a column default,
// chunk_state by a trigger when a chunk becomes failed), and a reader reads only rows whose
// transaction id is below its snapshot's xmin (`pg_snapshot_xmin`), the oldest transaction
// still running. Every transaction below it has ended, and any transaction that commits
// later has an id at or above it, so the set of rows below the horizon never grows behind
// the reader: reading them in (decided_xid, index) order with a cursor on that pair sees
// each row exactly once, whatever order transactions commit in. Rows above the horizon wait
// for the next read (the cost: a follower lags by the longest write transaction running).

import { isFinalTaskStatus, type TaskStatus } from "@crowdcompute/contract/statuses";
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { chunksOfRow, maxRowChunks } from "../sql/result-rows.ts";
import { downloadLine, type ResultsFormat, type ResultsTask } from "./results.ts";

/** A position in a task's decided chunks: after chunk `index` of transaction `xid`. */
export type FollowCursor = { xid: string; index: number };

/** Before everything (rows that predate migration 0012 carry xid 0). */
export const followStart: FollowCursor = { xid: "0", index: -1 };

const maxXid = 2n ** 64n - 1n;

/** `xid-index`, as lines carry it and `?after=` takes it back. */
export const formatFollowCursor = (cursor: FollowCursor): string => `${cursor.xid}-${cursor.index}`;

/** The cursor in `text`, or null when it is not one a line could have carried. */
export function parseFollowCursor(text: string): FollowCursor | null {
  const match = /^(\d{1,20})-(\d{1,10})$/.exec(text);
  if (!match) return null;
  const xid = BigInt(match[1]!);
  const index = Number(match[2]);
  if (xid > maxXid || index > 2 ** 31 - 1) return null;
  return { xid: xid.toString(), index };
}

/**
 * A cursor after every chunk decided so far: everything below the horizon now has ended, and
 * whatever commits later has a transaction id at or above it, so a follow from here gets
 * exactly the chunks decided from now on (a live tail, `?from=now`).
 */
export async function followCursorNow(db: Db): Promise<FollowCursor> {
  const [row] = await queryRows<{ horizon: string }>(db, sql`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon`);
  return { xid: (BigInt(row!.horizon) - 1n).toString(), index: 2 ** 31 - 1 };
}

/** One read of a follow: the lines after a cursor, and what the loop needs to decide what next. */
export type FollowWindow = {
  /** Lines (each with its own cursor), in (xid, index) order; "" when there were none. */
  text: string;
  /** After the last line of `text` (the cursor read from when there was none). */
  cursor: FollowCursor;
  /** Settled lines remain past this window (a byte or row budget cut it): read again at once. */
  more: boolean;
  /** The task has committed lines above the horizon: they settle when older transactions end. */
  unsettled: boolean;
  /** The task's status in this read's snapshot; null when the task is gone. */
  status: TaskStatus | null;
  /** This read's snapshot: its xmin (everything below has ended) and its xmax (the next id). */
  horizon: bigint;
  snapshotEnd: bigint;
};

export interface FollowWindowOptions {
  /** A window stops after the line that takes it past this many bytes (about). */
  budgetBytes?: number;
  /** Rows read from each table per window, and chunks expanded from block rows. */
  maxRows?: number;
  maxChunks?: number;
}

/**
 * The decided chunks of `task` after `cursor` that no running transaction can still add to,
 * as download lines with their cursors, built by the database as one text (as
 * finalChunksWindow does, so memory stays one window however long the follow).
 */
export async function followWindow(
  db: Db,
  task: ResultsTask,
  cursor: FollowCursor,
  format: ResultsFormat,
  { budgetBytes = 2 * 1024 * 1024, maxRows = 1024, maxChunks = 16_384 }: FollowWindowOptions = {},
): Promise<FollowWindow> {
  const x = sql`${cursor.xid}::xid8`;
  // bigint: a tail's cursor (followCursorNow) sits at the last int, and i + 1 must not overflow.
  const i = sql`${cursor.index}::bigint`;
  const inputOf = task.inputKind === "range" ? sql`NULL::text` : sql`(SELECT ci.input FROM chunk_inputs ci WHERE ci.task_id = ${task.id} AND ci.idx = c.idx)`;
  // Each table is read in two index ranges of (task_id, decided_xid, idx): the rest of the
  // cursor's own transaction, then the transactions after it up to the horizon. Reduce
  // chunks (indexes from total on) are not results of the task's inputs: left out.
  // A table read stops after maxRows rows (results also after maxChunks chunks), so the
  // merge of the two tables is complete only up to the last key each read reached: lines
  // past that bound wait for the next window (`more`).
  const [row] = await queryRows<{
    text: string | null;
    last_xid: string | null;
    last_idx: number | null;
    cut: boolean | null;
    truncated: boolean;
    unsettled: boolean;
    status: TaskStatus | null;
    horizon: string;
    snapshot_end: string;
  }>(
    db,
    sql`WITH h AS MATERIALIZED (
          SELECT pg_snapshot_xmin(s.snap) AS horizon, pg_snapshot_xmax(s.snap) AS snapshot_end,
                 (SELECT t.status FROM tasks t WHERE t.id = ${task.id}) AS status,
                 (SELECT t.total FROM tasks t WHERE t.id = ${task.id}) AS total
          FROM (SELECT pg_current_snapshot() AS snap) s
        ), rr0 AS MATERIALIZED (
          SELECT u.*, sum(u.n) OVER (ORDER BY u.xid, u.idx) - u.n AS chunks_before FROM (
            (SELECT r.decided_xid AS xid, r.idx, r.n, r.result FROM results r
             WHERE r.task_id = ${task.id} AND r.decided_xid = ${x} AND ${x} < (SELECT horizon FROM h)
               AND r.idx > ${i} - ${maxRowChunks} AND r.idx + r.n > ${i} + 1 AND r.idx < (SELECT total FROM h)
             ORDER BY r.idx LIMIT ${maxRows})
            UNION ALL
            (SELECT r.decided_xid, r.idx, r.n, r.result FROM results r
             WHERE r.task_id = ${task.id} AND r.decided_xid > ${x} AND r.decided_xid < (SELECT horizon FROM h)
               AND r.idx < (SELECT total FROM h)
             ORDER BY r.decided_xid, r.idx LIMIT ${maxRows})
            ORDER BY 1, 2 LIMIT ${maxRows}) u
        ), rr AS MATERIALIZED (
          SELECT * FROM rr0 WHERE chunks_before < ${maxChunks}
        ), ff AS MATERIALIZED (
          SELECT * FROM (
            (SELECT s.decided_xid AS xid, s.idx, s.last_error FROM chunk_state s
             WHERE s.task_id = ${task.id} AND s.status = 'failed' AND s.decided_xid = ${x} AND ${x} < (SELECT horizon FROM h)
               AND s.idx > ${i} AND s.idx < (SELECT total FROM h)
             ORDER BY s.idx LIMIT ${maxRows})
            UNION ALL
            (SELECT s.decided_xid, s.idx, s.last_error FROM chunk_state s
             WHERE s.task_id = ${task.id} AND s.status = 'failed' AND s.decided_xid > ${x} AND s.decided_xid < (SELECT horizon FROM h)
               AND s.idx < (SELECT total FROM h)
             ORDER BY s.decided_xid, s.idx LIMIT ${maxRows})
            ORDER BY 1, 2 LIMIT ${maxRows}) u
        ), b AS MATERIALIZED (
          SELECT (SELECT count(*) FROM rr0) >= ${maxRows} OR (SELECT count(*) FROM rr) < (SELECT count(*) FROM rr0) AS r_cut,
                 (SELECT xid FROM rr ORDER BY xid DESC, idx DESC LIMIT 1) AS r_xid,
                 (SELECT idx + n - 1 FROM rr ORDER BY xid DESC, idx DESC LIMIT 1) AS r_idx,
                 (SELECT count(*) FROM ff) >= ${maxRows} AS f_cut,
                 (SELECT xid FROM ff ORDER BY xid DESC, idx DESC LIMIT 1) AS f_xid,
                 (SELECT idx FROM ff ORDER BY xid DESC, idx DESC LIMIT 1) AS f_idx
        ), c AS (
          SELECT rr.xid, rr.idx + x.o AS idx, 'done' AS status, x.result, NULL::jsonb AS error
          FROM rr CROSS JOIN ${chunksOfRow(sql`rr`)} x
          UNION ALL
          SELECT ff.xid, ff.idx, 'failed', NULL, ff.last_error FROM ff
        ), f AS (
          SELECT c.*, ${inputOf} AS input FROM c, b
          WHERE (c.xid, c.idx) > (${x}, ${i})
            AND (NOT b.r_cut OR (c.xid, c.idx) <= (b.r_xid, b.r_idx))
            AND (NOT b.f_cut OR (c.xid, c.idx) <= (b.f_xid, b.f_idx))
        ), sized AS (
          SELECT *, 64 + coalesce(octet_length(result), 0) + coalesce(octet_length(input), 0) AS bytes FROM f
        ), w AS (
          -- A line is taken while the bytes before it are under the budget.
          SELECT *, sum(bytes) OVER (ORDER BY xid, idx) - bytes < ${budgetBytes} AS taken FROM sized
        )
        SELECT string_agg(${downloadLine(task, format, sql`w.xid::text || '-' || w.idx`)}, '' ORDER BY w.xid, w.idx) FILTER (WHERE w.taken) AS text,
               (array_agg(w.xid::text ORDER BY w.xid DESC, w.idx DESC) FILTER (WHERE w.taken))[1] AS last_xid,
               (array_agg(w.idx ORDER BY w.xid DESC, w.idx DESC) FILTER (WHERE w.taken))[1] AS last_idx,
               bool_or(NOT w.taken) AS cut,
               (SELECT r_cut OR f_cut FROM b) AS truncated,
               EXISTS (SELECT 1 FROM results r WHERE r.task_id = ${task.id} AND r.decided_xid >= (SELECT horizon FROM h) AND r.idx < (SELECT total FROM h))
                 OR EXISTS (SELECT 1 FROM chunk_state s WHERE s.task_id = ${task.id} AND s.status = 'failed'
                              AND s.decided_xid >= (SELECT horizon FROM h) AND s.idx < (SELECT total FROM h)) AS unsettled,
               (SELECT status FROM h) AS status, (SELECT horizon::text FROM h) AS horizon, (SELECT snapshot_end::text FROM h) AS snapshot_end
        FROM w`,
  );
  if (!row) throw new Error("followWindow: no row");
  const text = row.text ?? "";
  return {
    text,
    cursor: text && row.last_xid !== null && row.last_idx !== null ? { xid: row.last_xid, index: Number(row.last_idx) } : cursor,
    more: Boolean(row.cut) || row.truncated,
    unsettled: row.unsettled,
    status: row.status,
    horizon: BigInt(row.horizon),
    snapshotEnd: BigInt(row.snapshot_end),
  };
}

/** How a follow waits: for a change of its task (NOTIFY or a poll), or a short while. */
export interface FollowWaits {
  /**
   * Starts listening for a change of the task. Called before each read, so that a change
   * committed while the read runs is not missed; `stop` is called when it is not needed.
   */
  listen(): { changed: Promise<void>; stop(): void };
  /** Resolves after `ms` (sooner when the follow is aborted). */
  sleep(ms: number): Promise<void>;
}

export interface FollowOptions extends FollowWindowOptions {
  after?: FollowCursor;
  waits: FollowWaits;
  signal: AbortSignal;
}

/**
 * The lines of `task` as they are decided, window by window, until the task ends (done,
 * failed, cancelled: the generator returns) or `signal` aborts. It ends only once every
 * line committed before the end was seen: the first read that sees the task ended notes
 * its snapshot's xmax, and the follow returns when it has caught up at a horizon at least
 * that high, since every row committed before that read has a smaller transaction id.
 * A deleted task ends it too.
 */
export async function* followFinalChunks(db: Db, task: ResultsTask, format: ResultsFormat, options: FollowOptions): AsyncGenerator<string> {
  const { waits, signal } = options;
  let cursor = options.after ?? followStart;
  let endAt: bigint | null = null;
  let settleMs = minSettleMs;
  while (!signal.aborted) {
    const listening = waits.listen();
    let window: FollowWindow;
    try {
      window = await followWindow(db, task, cursor, format, options);
    } catch (error) {
      listening.stop();
      throw error;
    }
    if (window.status === null) {
      listening.stop();
      return;
    }
    if (endAt === null && isFinalTaskStatus(window.status)) endAt = window.snapshotEnd;
    if (window.text) {
      cursor = window.cursor;
      yield window.text;
    }
    if (window.more) {
      listening.stop();
      continue;
    }
    // Caught up as of this read.
    if (endAt !== null && window.horizon >= endAt) {
      listening.stop();
      return;
    }
    if (window.unsettled || endAt !== null) {
      // Lines are committed but an older transaction (of any task) still runs: they settle
      // when it ends, which no notification tells, so poll briefly.
      listening.stop();
      await waits.sleep(settleMs);
      settleMs = Math.min(settleMs * 2, maxSettleMs);
      continue;
    }
    settleMs = minSettleMs;
    await listening.changed;
    listening.stop();
  }
}

const minSettleMs = 20;
const maxSettleMs = 1000;
