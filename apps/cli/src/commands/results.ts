// `crowdcompute results ID [--format csv] [--follow] > out`: streamed to stdout, progress on stderr.
import type { Client, ResultLine } from "@crowdcompute/sdk";
import { escapeJsonText } from "@crowdcompute/sdk";
import cliProgress from "cli-progress";
import { csvHeader, csvRow } from "../csv.ts";
import { formatCount, isTty, writeWithBackpressure } from "../output.ts";

export async function downloadResults(client: Client, id: string, format: "ndjson" | "csv", quiet: boolean): Promise<number> {
  // The task first: a clear 404 before any output, and the count the progress bar aims at.
  const task = await client.getTask(id);
  const expected = task.counts.done + task.counts.failed;
  const bar =
    !quiet && isTty(process.stderr)
      ? new cliProgress.SingleBar({ format: "{bar} {percentage}% | {value}/{total} results", stream: process.stderr, hideCursor: true, fps: 5 }, cliProgress.Presets.shades_classic)
      : null;
  bar?.start(Math.max(expected, 1), 0);
  let count = 0;
  try {
    const { sent, lines } = await client.resultLines(id, format);
    // The server's CSV when it has one; until then CSV is made here from the NDJSON stream.
    const convert = format === "csv" && sent === "ndjson";
    if (convert) await writeWithBackpressure(process.stdout, csvHeader);
    let batch = "";
    for await (const line of lines) {
      batch += convert ? csvRow(JSON.parse(line) as ResultLine) : `${line}\n`;
      // A server CSV's header is not a result.
      if (!(sent === "csv" && count === 0 && line.startsWith("index,"))) count += 1;
      if (batch.length >= 64 * 1024) {
        // Lines are JSON text (NDJSON, or CSV cells of JSON): escaping keeps their values (docs/architecture.md, "Printing what others wrote").
        await writeWithBackpressure(process.stdout, escapeJsonText(batch));
        batch = "";
        bar?.update(Math.min(count, expected));
      }
    }
    if (batch) await writeWithBackpressure(process.stdout, escapeJsonText(batch));
  } finally {
    bar?.update(Math.min(count, expected));
    bar?.stop();
  }
  if (!quiet) {
    const unfinished = task.counts.total - expected;
    const note = unfinished > 0 ? ` (${formatCount(unfinished)} chunks not final yet; task is ${task.status})` : "";
    process.stderr.write(`${formatCount(count)} results of task ${id}${note}\n`);
  }
  return 0;
}

/**
 * `results ID --follow`: each final chunk as it is decided (not in index order), written as
 * the server sends it, its `cursor` included (NDJSON member, last CSV column), until the task
 * ends; a dropped connection is resumed from the last cursor. Exit 1 when a chunk failed
 * (unless `allowFailures`) or the task did not end done.
 */
export async function followResults(
  client: Client,
  id: string,
  { format, after, quiet, allowFailures }: { format: "ndjson" | "csv"; after?: string; quiet: boolean; allowFailures: boolean },
): Promise<number> {
  const task = await client.getTask(id); // a clear 404 before any output
  const bar =
    !quiet && isTty(process.stderr)
      ? new cliProgress.SingleBar({ format: "{bar} {value} results followed | task {status}", stream: process.stderr, hideCursor: true, fps: 5 }, cliProgress.Presets.shades_classic)
      : null;
  bar?.start(Math.max(task.counts.total, 1), 0, { status: task.status });
  let count = 0;
  let failed = 0;
  try {
    // The server's followed CSV: the download's columns and the cursor last.
    if (format === "csv") await writeWithBackpressure(process.stdout, csvHeader.replace("\r\n", ",cursor\r\n"));
    for await (const { line } of client.followResultLines(id, format, after === undefined ? {} : { after })) {
      count += 1;
      if (format === "ndjson" ? line.includes('"status":"failed"') && (JSON.parse(line) as ResultLine).status === "failed" : /^\d+,failed,/.test(line)) failed += 1;
      // A line at a time: a follower wants each result as it comes, not a batch later.
      await writeWithBackpressure(process.stdout, `${escapeJsonText(line)}${format === "csv" ? "\r\n" : "\n"}`);
      bar?.update(count);
    }
  } finally {
    bar?.stop();
  }
  const ended = await client.getTask(id);
  if (!quiet) {
    const note = failed > 0 ? `, ${formatCount(failed)} failed` : "";
    process.stderr.write(`${formatCount(count)} results followed${note}; task ${id} ${ended.status}\n`);
    if (failed > 0 && !allowFailures) process.stderr.write("exit 1: chunks failed (--allow-failures to accept them)\n");
  }
  return ended.status === "done" && (allowFailures || failed === 0) ? 0 : 1;
}
