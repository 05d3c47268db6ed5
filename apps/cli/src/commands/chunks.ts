// `crowdcompute chunks ID [--status S]`: a task's chunks with their attempts, votes and errors,
// page by page from the server (never all in memory); `status ID --chunk N`: one chunk whole,
// its console output included.
import type { Chunk, ChunkStatus, Client } from "@crowdcompute/sdk";
import { formatCount, jsonLine, paint, safe, safeLines, writeWithBackpressure } from "../output.ts";

const statusStyle: Record<ChunkStatus, "gray" | "cyan" | "yellow" | "green" | "red"> = {
  pending: "gray",
  leased: "cyan",
  voting: "yellow",
  done: "green",
  failed: "red",
};

function describe(chunk: Chunk): string {
  const parts = [String(chunk.index).padStart(8), paint(statusStyle[chunk.status], chunk.status.padEnd(7))];
  if (chunk.attempts !== null && chunk.attempts > 0) parts.push(`attempts ${chunk.attempts}`);
  if (chunk.expiries !== null && chunk.expiries > 0) parts.push(`expired ${chunk.expiries}`);
  if (chunk.votes.length > 0) parts.push(`votes ${chunk.votes.map((v) => `${safe(v.hashPrefix.slice(0, 6))}${v.agrees === false ? "✗" : ""}`).join(" ")}`);
  if (chunk.waitingFor) parts.push(paint("yellow", `waits for ${waitsFor(chunk.waitingFor)}`));
  if (chunk.progress) parts.push(paint("cyan", `${Math.round(chunk.progress.fraction * 100)} %${chunk.progress.message ? ` ${safe(chunk.progress.message)}` : ""}`));
  if (chunk.checkpointAt) parts.push("checkpointed");
  if (chunk.lastError) parts.push(paint("red", `${safe(chunk.lastError.kind)}: ${safe(chunk.lastError.message)}`));
  if (chunk.console) parts.push(paint("gray", `console: ${chunk.console.lines.length} line${chunk.console.lines.length === 1 ? "" : "s"}${chunk.console.truncated ? "+" : ""}`));
  return parts.join("  ");
}

/** A voting chunk's `waitingFor` in words (docs/architecture.md, "Replication, trust and reduce"). */
function waitsFor(waiting: NonNullable<Chunk["waitingFor"]>): string {
  const out = waiting.copiesOut > 0 ? `, ${waiting.copiesOut} being computed` : "";
  const copies = (n: number) => (n === 1 ? "1 copy agrees" : `${n} copies agree`);
  if (waiting.reason === "trustedCopy") return `a trusted volunteer's copy (${waiting.agreeing} untrusted agree${out})`;
  if (waiting.reason === "firstCopy") return `a volunteer to compute it${out ? ` (${out.slice(2)})` : ""}`;
  return `${waiting.moreAgreeing} more agreeing ${waiting.moreAgreeing === 1 ? "copy" : "copies"} (${copies(waiting.agreeing)}${out})`;
}

const levelStyle: Record<string, "gray" | "yellow" | "red" | undefined> = { debug: "gray", warn: "yellow", error: "red" };

/** `status ID --chunk N`: the chunk's state, input, progress, error, votes and console output; exit 1 when there is no such chunk. */
export async function showChunk(client: Client, id: string, index: number, json: boolean): Promise<number> {
  const page = await client.listChunks(id, { ...(index > 0 ? { cursor: String(index - 1) } : {}), limit: 1 });
  const chunk = page.items[0];
  if (!chunk || chunk.index !== index) {
    process.stderr.write(`task ${id} has no chunk ${index}\n`);
    return 1;
  }
  if (json) {
    process.stdout.write(`${jsonLine(chunk)}\n`);
    return 0;
  }
  const lines = [describe(chunk), `  input     ${jsonLine(chunk.input)}`];
  if (chunk.progress) lines.push(`  progress  ${Math.round(chunk.progress.fraction * 100)} %${chunk.progress.message ? ` (${safe(chunk.progress.message)})` : ""} at ${chunk.progress.at}`);
  if (chunk.checkpointAt) lines.push(`  checkpoint saved at ${chunk.checkpointAt}: a retry resumes from it`);
  if (chunk.lastError) lines.push(`  error     ${safe(chunk.lastError.kind)}: ${safe(chunk.lastError.message)}`);
  for (const vote of chunk.votes) lines.push(`  vote      ${safe(vote.hashPrefix)} from ${safe(vote.volunteer.name ?? vote.volunteer.id)}${vote.agrees === false ? " (disagrees)" : ""}`);
  if (chunk.console) {
    lines.push(`  console   of the ${chunk.console.outcome === "done" ? "attempt that gave the result" : "latest failed attempt"}, at ${chunk.console.at}:`);
    for (const line of chunk.console.lines) {
      // A line's own newlines stay, indented under it: what follows cannot pass for a line of its own.
      const text = `    ${safe(line.level).padEnd(5)} ${safeLines(line.text).replaceAll("\n", "\n          ")}`;
      const style = levelStyle[line.level];
      lines.push(style ? paint(style, text) : text);
    }
    if (chunk.console.truncated) lines.push(paint("gray", "    (it wrote more: a chunk keeps 100 lines and 16 KiB)"));
  } else lines.push("  console   (nothing written)");
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

/** Lists chunks in index order (up to `limit`, or all); one JSON object a line with `json`. */
export async function listChunks(client: Client, id: string, { status, limit, json }: { status?: ChunkStatus; limit: number | null; json: boolean }): Promise<number> {
  let cursor: string | undefined;
  let shown = 0;
  let more = false;
  do {
    const page = await client.listChunks(id, { ...(status ? { status } : {}), ...(cursor ? { cursor } : {}), limit: limit === null ? 200 : Math.min(200, limit - shown) });
    let text = "";
    for (const chunk of page.items) {
      text += json ? `${jsonLine(chunk)}\n` : `${describe(chunk)}\n`;
      shown += 1;
    }
    if (text) await writeWithBackpressure(process.stdout, text);
    cursor = page.nextCursor ?? undefined;
    more = cursor !== undefined;
  } while (more && (limit === null || shown < limit));
  if (!json) {
    // (A cursor past the last chunk may find nothing more: "more" is what the server could not rule out.)
    const hint = more ? ` (more: --limit ${(limit ?? 0) * 2} or --all)` : "";
    process.stderr.write(`${formatCount(shown)} chunk${shown === 1 ? "" : "s"}${status ? ` ${status}` : ""}${hint}\n`);
  }
  return 0;
}
