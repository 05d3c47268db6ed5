// Reputation and trust (docs/architecture.md, "Replication, trust and reduce"): what a decided
// vote does to its volunteers. Losers to a vouched side take a loss and may be banned, a trusted
// loser is distrusted, and probationers with enough vouched wins become trusted; chunks whose
// results a ban or distrust takes back are voted on again (`reopenChunks`).
import { type SQL, sql } from "drizzle-orm";
import { type Db, queryRows } from "../db.ts";
import { addToTaskCounters, type TaskCounter } from "../sql/counters.ts";
import { runTasksAgain } from "../sql/run-again.ts";
import { reopenBannedBlocks } from "./block-explode.ts";
import { resetReduceTrees } from "./reduce.ts";

// Trust (docs/architecture.md, "Replication, trust and reduce"): a probationer becomes
// trusted after this many wins shared with a vouching vote (an admin's volunteer's or an
// earned-trust volunteer's, never a task owner's own), from at least this many distinct vouchers.
const winsToTrust = 10;
export const vouchersToTrust = 3;
// Reputation: a volunteer whose results lost to a side with a vouching vote at least this many
// times, and in more than this share of its decided results, is banned: its votes stop
// counting, and quorums that needed them are reopened.
const lossesToBan = 3;
const lossShareToBan = 0.2;

/**
 * Where a vouching vote (an admin's or earned-trust volunteer's, not a task owner's own) was on
 * the winning side, every counted vote against it was wrong: its volunteer takes a loss.
 * Volunteers past the ban line are banned (see `banVolunteers`).
 * Returns the tasks whose chunks the bans reopened, and per task of `winners` how many of the
 * volunteers banned lost on it now.
 */
export async function penalizeLosers(tx: Db, winners: { task_id: string; idx: number; hash: string }[]): Promise<{ reopened: string[]; bannedOn: Map<string, number> }> {
  const penalized = await queryRows<{ id: string; wins: number; losses: number; trusted: boolean }>(
    tx,
    sql`WITH w AS (
          SELECT * FROM json_to_recordset(${JSON.stringify(winners)}::json) AS w(task_id uuid, idx int, hash text)
        ), vouched AS (
          SELECT w.* FROM w WHERE EXISTS (SELECT 1 FROM votes v JOIN volunteers tv ON tv.id = v.volunteer_id AND tv.trusted AND NOT tv.banned
                                           WHERE v.task_id = w.task_id AND v.idx = w.idx AND v.hash = w.hash AND v.counted AND v.trusted)
        ), lost AS (
          SELECT v.volunteer_id, count(*) AS n FROM votes v
          JOIN vouched w ON v.task_id = w.task_id AND v.idx = w.idx AND v.hash <> w.hash AND v.counted
          GROUP BY v.volunteer_id
        )
        UPDATE volunteers p SET losses = p.losses + lost.n FROM lost
        WHERE p.id = lost.volunteer_id AND NOT p.banned
        RETURNING p.id, p.wins, p.losses, p.trusted`,
  );
  // A trusted volunteer that lost to a vouched side (a sleeper, or one that broke) loses its
  // trust, and what it decided alone on spot-checked tasks is decided again.
  const fallen = penalized.filter((v) => v.trusted).map((v) => v.id);
  const reopened = fallen.length > 0 ? await distrust(tx, fallen) : [];
  const banned = penalized.filter((v) => v.losses >= lossesToBan && v.losses > lossShareToBan * (v.wins + v.losses));
  if (banned.length === 0) return { reopened, bannedOn: new Map() };
  const ids = banned.map((v) => v.id);
  const on = await queryRows<{ task_id: string; n: number }>(
    tx,
    sql`SELECT w.task_id, count(DISTINCT v.volunteer_id)::int AS n
        FROM json_to_recordset(${JSON.stringify(winners)}::json) AS w(task_id uuid, idx int, hash text)
        JOIN votes v ON v.task_id = w.task_id AND v.idx = w.idx AND v.hash <> w.hash
        WHERE v.volunteer_id IN (SELECT value::uuid FROM json_array_elements_text(${JSON.stringify(ids)}::json))
        GROUP BY w.task_id`,
  );
  return { reopened: [...reopened, ...(await banVolunteers(tx, ids))], bannedOn: new Map(on.map((row) => [row.task_id, row.n])) };
}

/**
 * Takes trust from volunteers (trust is earned again from scratch) and reopens every chunk
 * they decided alone: a spot-checked task's block accepted on one trusted copy has a result
 * row and no vote. Its chunks go back to voting for `replication` fresh copies, its task back
 * to running, and a reduce tree built on them is built again. Returns the tasks reopened.
 */
async function distrust(tx: Db, volunteerIds: string[]): Promise<string[]> {
  const ids = JSON.stringify(volunteerIds);
  await tx.execute(sql`
    UPDATE volunteers SET trusted = false, vouched_wins = 0, vouchers = '{}'
    WHERE id IN (SELECT value::uuid FROM json_array_elements_text(${ids}::json))`);
  return reopenChunks(
    tx,
    sql`WITH alone AS (
          -- Results are found through the tasks that can have such rows (by the primary key's
          -- task prefix), never by a scan of every result for its volunteer.
          DELETE FROM results r USING tasks t
          WHERE t.replication > 1 AND t.spot_check < 1 AND r.task_id = t.id
            AND r.volunteer_id IN (SELECT value::uuid FROM json_array_elements_text(${ids}::json))
            AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.task_id = r.task_id AND v.idx = r.idx)
            -- a block decided whole by agreeing copies has its votes as block votes
            AND NOT EXISTS (SELECT 1 FROM block_votes bv WHERE bv.task_id = r.task_id AND bv.first_idx = r.idx)
          RETURNING r.task_id, r.idx, r.n, r.cpu_ms, t.total, t.replication
        ), chunks AS (
          SELECT a.task_id, c.idx, a.replication FROM alone a CROSS JOIN LATERAL generate_series(a.idx, a.idx + a.n - 1) AS c(idx)
        )`,
    {
      taken: sql`alone`,
      revoting: sql`SELECT task_id, idx, 'voting', replication, 0 FROM chunks`,
      // they leave done, and each chunk reopened is a chunk replicated now
      stepBack: {
        counters: ["done", "cpu_ms", "replicated"],
        rows: sql`SELECT task_id, 0, -coalesce(sum(least(n, greatest(total - idx, 0))), 0), -sum(cpu_ms), sum(n) FROM alone GROUP BY task_id ORDER BY task_id`,
      },
    },
  );
}

/**
 * Bans volunteers (they are not told): their votes stop counting, and every chunk whose
 * result needed one of their votes to make its quorum goes back to voting for another copy.
 * Returns the tasks it reopened chunks of.
 */
async function banVolunteers(tx: Db, volunteerIds: string[]): Promise<string[]> {
  const ids = JSON.stringify(volunteerIds);
  await tx.execute(sql`
    UPDATE volunteers SET banned = true, trusted = false WHERE id IN (SELECT value::uuid FROM json_array_elements_text(${ids}::json))`);
  await tx.execute(sql`
    WITH uncounted AS (
      UPDATE votes SET counted = false WHERE volunteer_id IN (SELECT value::uuid FROM json_array_elements_text(${ids}::json)) AND counted
      RETURNING task_id, idx
    )
    -- Their chunks under vote count a vote fewer, and may want another copy.
    UPDATE chunk_state cs SET votes_in = greatest(cs.votes_in - u.n, 0)
    FROM (SELECT task_id, idx, count(*)::int AS n FROM uncounted GROUP BY task_id, idx) u
    WHERE cs.task_id = u.task_id AND cs.idx = u.idx AND cs.status = 'voting'`);
  // Blocks decided whole that needed their votes go back to voting as blocks.
  const blockTasks = await reopenBannedBlocks(tx, ids);
  if (blockTasks.length > 0) await resetReduceTrees(tx, blockTasks);
  const chunkTasks = await reopenChunks(
    tx,
    sql`WITH helped AS (
          SELECT DISTINCT r.task_id, r.idx, r.hash, r.cpu_ms FROM results r
          JOIN votes v ON v.task_id = r.task_id AND v.idx = r.idx AND v.hash = r.hash
          WHERE v.volunteer_id IN (SELECT value::uuid FROM json_array_elements_text(${ids}::json))
        ), standing AS (
          SELECT h.*, t.quorum, t.total,
                 (SELECT count(*) FROM votes v WHERE v.task_id = h.task_id AND v.idx = h.idx AND v.hash = h.hash AND v.counted) AS agreeing,
                 (SELECT coalesce(bool_or(v.trusted), false) FROM votes v WHERE v.task_id = h.task_id AND v.idx = h.idx AND v.hash = h.hash AND v.counted) AS vouched,
                 (SELECT count(*) FROM votes v WHERE v.task_id = h.task_id AND v.idx = h.idx AND v.counted) AS counted_votes
          FROM helped h JOIN tasks t ON t.id = h.task_id
        ), fallen AS (
          DELETE FROM results r USING standing s
          WHERE r.task_id = s.task_id AND r.idx = s.idx AND (s.agreeing < s.quorum OR NOT s.vouched)
          RETURNING r.task_id, r.idx, r.cpu_ms, s.counted_votes, s.total
        )`,
    {
      taken: sql`fallen`,
      revoting: sql`SELECT task_id, idx, 'voting', counted_votes + 1, counted_votes FROM fallen`,
      // done counts the task's own chunks, never its reduce chunks (indexes past total).
      stepBack: { counters: ["done", "cpu_ms"], rows: sql`SELECT task_id, 0, -count(*) FILTER (WHERE idx < total), -sum(cpu_ms) FROM fallen GROUP BY task_id ORDER BY task_id` },
    },
  );
  return [...new Set([...blockTasks, ...chunkTasks])];
}

/**
 * The decided chunks' probationers with enough vouched wins from enough distinct vouchers
 * become trusted (docs/architecture.md, "Replication, trust and reduce"): only wins shared
 * with admins' or earned-trust volunteers count, so fresh identities, or a creator's own
 * volunteers on its tasks, cannot promote each other.
 */
export async function promoteProbationers(tx: Db, winners: { task_id: string; idx: number }[]): Promise<void> {
  await promoteVoters(
    tx,
    sql`SELECT v.volunteer_id FROM json_to_recordset(${JSON.stringify(winners)}::json) AS w(task_id uuid, idx int)
        JOIN votes v ON v.task_id = w.task_id AND v.idx = w.idx AND v.counted AND NOT v.trusted`,
  );
}

/** `promoteProbationers` for the volunteers `voters` selects (a block's untrusted winning votes, block-votes.ts). */
export async function promoteVoters(tx: Db, voters: SQL): Promise<void> {
  await tx.execute(sql`
    UPDATE volunteers p SET trusted = true
    WHERE p.id IN (${voters})
      AND NOT p.trusted AND NOT p.banned AND p.vouched_wins >= ${winsToTrust} AND cardinality(p.vouchers) >= ${vouchersToTrust}`);
}

/**
 * Takes chunks whose results were taken back (a distrusted volunteer's lone results, results
 * that needed a banned volunteer's vote) back to voting, in one statement: `removed` is its
 * first CTEs, ending in `taken` (the deleted results, with their task_id); `revoting` selects
 * each chunk's (task_id, idx, status, needed, votes_in) row of chunk_state; `stepBack` takes
 * what they had counted off the task's counters. Their tasks run again, and a reduce tree
 * that may have read a result that fell is built again. Returns the tasks reopened.
 */
async function reopenChunks(tx: Db, removed: SQL, chunks: { taken: SQL; revoting: SQL; stepBack: { counters: readonly TaskCounter[]; rows: SQL } }): Promise<string[]> {
  const reopened = await queryRows<{ task_id: string }>(
    tx,
    sql`${removed}, revoting AS (
          INSERT INTO chunk_state (task_id, idx, status, needed, votes_in)
          ${chunks.revoting} ORDER BY task_id, idx
          ON CONFLICT (task_id, idx) DO UPDATE SET status = 'voting', needed = excluded.needed, copies_out = 0, votes_in = excluded.votes_in
        ), uncounted AS (
          ${addToTaskCounters(chunks.stepBack.counters, chunks.stepBack.rows)}
        ), running_again AS (
          ${runTasksAgain(chunks.taken)}
        )
        SELECT DISTINCT task_id FROM ${chunks.taken}`,
  );
  const taskIds = reopened.map((row) => row.task_id);
  await resetReduceTrees(tx, taskIds);
  return taskIds;
}
