// `crowdcompute results ID [--format csv] > out`: streamed to stdout, progress on stderr.
import type { Client, ResultLine } from "@crowdcompute/sdk";
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
        await writeWithBackpressure(process.stdout, batch);
        batch = "";
        bar?.update(Math.min(count, expected));
      }
    }
    if (batch) await writeWithBackpressure(process.stdout, batch);
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
