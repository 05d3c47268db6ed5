// `status`, `tasks`, `start|pause|resume|cancel`, and following a task until it ends.
import { setTimeout as sleep } from "node:timers/promises";
import { finalTaskStatuses } from "@crowdcompute/contract/statuses";
import { ApiError, type Client, type LifecycleAction, type Task, type TaskStatus } from "@crowdcompute/sdk";
import cliProgress from "cli-progress";
import { describeError } from "../errors.ts";
import { formatCount, formatDuration, formatRate, isTty, jsonLine, paint, printJson, safe } from "../output.ts";

/** The contract's final statuses: a watched task that reaches one is over. */
const finalStatuses: readonly TaskStatus[] = finalTaskStatuses;

const statusStyle: Record<TaskStatus, Parameters<typeof paint>[0]> = {
  draft: "gray",
  running: "cyan",
  paused: "yellow",
  done: "green",
  failed: "red",
  cancelled: "red",
};

const percentOf = (task: Task) => (task.counts.total === 0 ? 0 : Math.floor(((task.counts.done + task.counts.failed) * 100) / task.counts.total));

function bar(task: Task, width = 30): string {
  const { total, done, failed } = task.counts;
  const doneCells = total === 0 ? 0 : Math.round((done / total) * width);
  const failedCells = total === 0 ? 0 : Math.min(width - doneCells, Math.round((failed / total) * width));
  return paint("green", "█".repeat(doneCells)) + paint("red", "█".repeat(failedCells)) + paint("gray", "░".repeat(width - doneCells - failedCells));
}

/** "chunk 7: throw: boom", its text escaped. */
const describeChunkError = (error: NonNullable<Task["lastError"]>) => `chunk ${error.index}: ${safe(error.kind)}: ${safe(error.message)}`;

/**
 * What a replicated task's awaiting chunks wait for (docs/architecture.md, "Replication, trust
 * and reduce"): a trusted volunteer's copy where untrusted copies already agree, else more
 * agreeing copies from volunteers (and accounts) that have not computed them.
 */
function describeWaiting(task: Task): string {
  const awaiting = task.counts.awaitingCopy;
  const waiting = task.waiting;
  const parts: string[] = [];
  if (waiting && waiting.trustedCopy > 0) parts.push(`${formatCount(waiting.trustedCopy)} for a trusted volunteer's copy (untrusted copies agree; more of them cannot decide)`);
  const more = waiting ? waiting.moreCopies + Math.max(0, awaiting - waiting.examined) : awaiting;
  if (more > 0) parts.push(`${formatCount(more)} for more agreeing copies from volunteers that have not computed them`);
  const examined = waiting && waiting.examined < awaiting ? ` (of the first ${formatCount(waiting.examined)} examined)` : "";
  return `${formatCount(awaiting)} chunk${awaiting === 1 ? "" : "s"}: ${parts.join("; ")}${examined}; \`crowdcompute chunks ${task.id} --status voting\` for each`;
}

/** A task for people: a bar and colours on a TTY, `key: value` lines when piped. */
function printTask(task: Task): void {
  const { total, done, failed, pending, leased } = task.counts;
  const lines: [string, string][] = [
    ["task", `${task.id}  ${safe(task.name)}`],
    ["status", paint(statusStyle[task.status], task.status)],
    [
      "progress",
      `${isTty(process.stdout) ? `${bar(task)} ` : ""}${percentOf(task)}%  ${formatCount(done)} done, ${formatCount(failed)} failed, ${formatCount(leased)} running, ${formatCount(pending)} pending of ${formatCount(total)}`,
    ],
    ["rate", `${formatRate(task.chunksPerSec)} chunks/s (last minute)`],
    ["cpu", formatDuration(task.cpuMs)],
    ["created", task.createdAt],
  ];
  if (task.replication > 1) {
    // What verification costs (docs/architecture.md, "Replication, trust and reduce"): copies per chunk done is the overhead.
    const v = task.verification;
    const overhead = done === 0 ? "" : ` (${(v.copiesReceived / done).toFixed(2)} a chunk done)`;
    lines.push([
      "verified",
      `${formatCount(v.copiesReceived)} copies received${overhead}, ${formatCount(v.chunksReplicated)} chunks replicated, ${formatCount(v.disagreements)} disagreements, ${formatCount(v.volunteersBanned)} volunteers banned`,
    ]);
  }
  if (task.counts.awaitingCopy > 0) lines.push(["waiting", describeWaiting(task)]);
  if (task.finishedAt) lines.push(["finished", task.finishedAt]);
  if (task.lastError) lines.push(["last error", paint("red", describeChunkError(task.lastError))]);
  if (task.aggregate.state !== "none" && task.aggregate.state !== "pending") lines.push(["aggregate", jsonLine(task.aggregate)]);
  for (const [key, value] of lines) console.log(`${`${key}:`.padEnd(11)} ${value}`);
}

export async function showStatus(client: Client, id: string, json: boolean): Promise<number> {
  const task = await client.getTask(id);
  if (json) printJson(task);
  else printTask(task);
  return 0;
}

/** How long a followed task may go without an answer from the server before we give up. */
const unreachableLimitMs = 120_000;

/**
 * Whether a task that ended is a success for the exit code: it ended done, and (unless
 * `allowFailures`) none of its chunks failed.
 */
const endedWell = (task: Task, allowFailures: boolean): boolean => task.status === "done" && (allowFailures || task.counts.failed === 0);

/**
 * Polls the task every second until it is done, failed or cancelled: a live bar on a TTY,
 * a line per change when piped (at most every 2 s), a JSON line per change with --json.
 * Resolves with 0 when the task ends done, 1 otherwise; with `allowFailures: false`, also 1
 * when any chunk failed (`status --watch`; `submit --watch` keeps the task's status alone).
 */
export async function watchTask(client: Client, id: string, json: boolean, { allowFailures = true }: { allowFailures?: boolean } = {}): Promise<number> {
  const tty = !json && isTty(process.stderr);
  const liveBar = tty
    ? new cliProgress.SingleBar(
        {
          format: `{bar} {percentage}% | {value}/{total} chunks | {failed} failed | {rate}/s | {status}`,
          stream: process.stderr,
          hideCursor: true,
          barsize: 30,
          fps: 4,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let lastKey = "";
  let lastPrintedAt = 0;
  let unreachableSince: number | null = null;
  let task: Task | null = null;
  let saidDraft = false;
  try {
    for (;;) {
      try {
        task = await client.getTask(id);
        unreachableSince = null;
      } catch (error) {
        if (error instanceof ApiError && error.status < 500) throw error;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > unreachableLimitMs) throw error;
        if (!json && !tty) console.error(`${describeError(error)}; still trying`);
        await sleep(2000);
        continue;
      }
      const { done, failed, total, leased } = task.counts;
      const final = finalStatuses.includes(task.status);
      const key = `${task.status}/${done}/${failed}/${leased}`;
      if (liveBar) {
        const payload = { failed: formatCount(failed), rate: formatRate(task.chunksPerSec), status: task.status };
        if (lastKey === "") liveBar.start(total, done + failed, payload);
        else liveBar.setTotal(total);
        liveBar.update(done + failed, payload);
      } else if (key !== lastKey && (final || Date.now() - lastPrintedAt >= 2000)) {
        lastPrintedAt = Date.now();
        if (json) printJson({ id: task.id, status: task.status, counts: task.counts, chunksPerSec: task.chunksPerSec });
        else console.log(`${task.status}: ${done}/${total} done, ${failed} failed, ${leased} running, ${formatRate(task.chunksPerSec)}/s`);
      }
      if (key !== lastKey) lastKey = key;
      if (final) break;
      if (task.status === "draft" && !saidDraft && !json) {
        saidDraft = true;
        console.error(`task ${id} is a draft: start it with \`crowdcompute start ${id}\``);
      }
      await sleep(1000);
    }
  } finally {
    liveBar?.stop();
  }
  const well = endedWell(task, allowFailures);
  if (!json) {
    const style = well ? "green" : "red";
    console.error(`${paint(style, `task ${task.id} ${task.status}`, process.stderr)} (${formatCount(task.counts.done)} done, ${formatCount(task.counts.failed)} failed)`);
    if (task.lastError) console.error(`last error: ${describeChunkError(task.lastError)}`);
    if (!well && task.status === "done") console.error("exit 1: chunks failed (--allow-failures to accept them; `crowdcompute retry-failed ID` to try them again)");
  }
  return well ? 0 : 1;
}

export async function lifecycle(client: Client, id: string, action: LifecycleAction, json: boolean): Promise<number> {
  const task = await client.taskAction(id, action);
  if (json) printJson(task);
  else console.log(`task ${task.id} is ${paint(statusStyle[task.status], task.status)}`);
  return 0;
}

export async function listTasks(client: Client, { limit, all, json }: { limit: number; all: boolean; json: boolean }): Promise<number> {
  const tasks: Task[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTasks({ limit: all ? 200 : Math.min(limit, 200), ...(cursor ? { cursor } : {}) });
    tasks.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && (all || tasks.length < limit));
  const shown = all ? tasks : tasks.slice(0, limit);
  if (json) {
    printJson(shown);
    return 0;
  }
  if (shown.length === 0) {
    console.log("no tasks yet: create one with `crowdcompute submit work.js --inputs inputs.ndjson`");
    return 0;
  }
  const header = ["ID", "STATUS", "FINAL/TOTAL", "CREATED", "NAME"];
  const rows = shown.map((task) => [
    task.id,
    task.status,
    `${formatCount(task.counts.done + task.counts.failed)}/${formatCount(task.counts.total)}`,
    task.createdAt.slice(0, 19).replace("T", " "),
    safe(task.name),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  // Padding is measured before colouring: escape codes have no width.
  const format = (row: string[], style: (cell: string, column: number) => string) => row.map((cell, i) => style(i === row.length - 1 ? cell : cell.padEnd(widths[i]!), i)).join("  ");
  console.log(format(header, (cell) => paint("bold", cell)));
  for (const row of rows) console.log(format(row, (cell, column) => (column === 1 ? paint(statusStyle[row[1] as TaskStatus], cell) : cell)));
  if (!all && cursor) console.log(paint("gray", `(more: --limit ${limit * 2} or --all)`));
  return 0;
}
