// `crowdcompute run work.js`: a dry run of chunks in local Chromium, through the same sandbox
// volunteers use, with output shaped like `crowdcompute results` on stdout and what each chunk
// wrote to its console on stderr.
import { createHash } from "node:crypto";
import type { ChunkOutcome, SandboxChunk } from "@crowdcompute/sandbox";
import type { ResultLine } from "@crowdcompute/sdk";
import cliProgress from "cli-progress";
import { bundleWork } from "../bundle.ts";
import { launchChromium } from "../chromium.ts";
import { csvHeader, csvRow } from "../csv.ts";
import { ProblemError, UsageError } from "../errors.ts";
import { parseRange, rangeChunk, rangeChunkCount, readInputsFile } from "../inputs.ts";
import type { LocalRunApi, LocalTask } from "../local-run/page.ts";
import { startLocalOrigins } from "../local-run/servers.ts";
import { formatCount, formatDuration, isTty, jsonLine, paint, safe, safeLines, writeWithBackpressure } from "../output.ts";
import { loadWasm } from "../wasm.ts";

export interface RunOptions {
  inputs?: string;
  wasm?: string;
  range?: string;
  limit?: number;
  threads: number;
  timeout: number;
  /** Each worker's memory budget (MiB), enforced as volunteers' sandboxes do. */
  memory?: number;
  format: "ndjson" | "csv";
  minify?: boolean;
  webgpu?: boolean;
  executablePath: string;
}

/** Resolves with 0 when every chunk succeeded, 1 when any failed. */
export async function runLocally(file: string, options: RunOptions): Promise<number> {
  if ((options.inputs === undefined) === (options.range === undefined)) {
    throw new UsageError("give exactly one of --inputs FILE (JSON array or NDJSON) or --range start:end:step:size");
  }
  const range = options.range !== undefined ? parseRange(options.range) : undefined;
  const { code } = await bundleWork(file, { minify: options.minify ?? false });
  const wasm = options.wasm !== undefined ? await loadWasm(options.wasm) : undefined;
  const items = options.inputs !== undefined ? await readInputsFile(options.inputs, options.limit) : undefined;
  const available = items ? items.length : rangeChunkCount(range!);
  const count = Math.min(available, options.limit ?? available);
  const inputOf = (index: number): unknown => (items ? items[index] : rangeChunk(range!, index));

  const task: LocalTask = {
    taskId: "local-dry-run",
    code,
    codeSha256: createHash("sha256").update(code, "utf8").digest("hex"),
    timeoutMs: options.timeout,
    memoryMb: options.memory ?? 256,
    webgpu: options.webgpu ?? false,
    // Bytes cannot cross page.evaluate (JSON): the page decodes base64.
    wasmBase64: wasm ? Buffer.from(wasm).toString("base64") : null,
    wasmSha256: wasm ? createHash("sha256").update(wasm).digest("hex") : null,
  };
  const origins = await startLocalOrigins();
  const chromium = await launchChromium(options.executablePath, { webgpu: options.webgpu ?? false }).catch(async (error: unknown) => {
    await origins.close();
    throw error;
  });
  const stop = () =>
    void chromium
      .close()
      .then(origins.close)
      .finally(() => process.exit(130));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const bar =
    isTty(process.stderr) && count > 1
      ? new cliProgress.SingleBar({ format: "{bar} {percentage}% | {value}/{total} chunks | {failed} failed", stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
  const started = Date.now();
  let failed = 0;
  let firstError: string | null = null;
  try {
    const page = await chromium.browser.newPage();
    page.on("pageerror", (error) => process.stderr.write(`page error: ${safeLines((error as Error).message)}\n`));
    await page.goto(origins.pageUrl, { waitUntil: "load" });
    await page.evaluate((origin, threads) => (globalThis as unknown as { ccLocal: LocalRunApi }).ccLocal.init(origin, threads), origins.sandboxOrigin, options.threads);
    if (options.format === "csv") await writeWithBackpressure(process.stdout, csvHeader);
    bar?.start(count, 0, { failed: 0 });
    // Batches a few chunks per thread deep keep every worker busy (docs/architecture.md, "The sandbox").
    const batchSize = Math.min(256, options.threads * 16);
    for (let first = 0; first < count; first += batchSize) {
      const chunks: SandboxChunk[] = [];
      for (let index = first; index < Math.min(first + batchSize, count); index++) chunks.push({ key: String(index), index, input: inputOf(index) });
      const outcomes: ChunkOutcome[] = await page.evaluate((t, c) => (globalThis as unknown as { ccLocal: LocalRunApi }).ccLocal.runBatch(t, c), task, chunks);
      let text = "";
      let logged = "";
      for (const [i, outcome] of outcomes.entries()) {
        const chunk = chunks[i]!;
        if (outcome.console) logged += consoleText(chunk.index, outcome.console);
        const line: ResultLine = outcome.ok
          ? { index: chunk.index, input: chunk.input, status: "done", result: JSON.parse(outcome.resultJson) as unknown }
          : { index: chunk.index, input: chunk.input, status: "failed", error: outcome.error };
        if (!outcome.ok) {
          failed += 1;
          firstError ??= `chunk ${chunk.index}: ${outcome.error.kind}: ${outcome.error.message}`;
        }
        text += options.format === "csv" ? csvRow(line) : `${jsonLine(line)}\n`;
      }
      // The bar's line is cleared first: it is drawn again by the update below.
      if (logged) process.stderr.write(`${bar ? "\r\x1b[2K" : ""}${logged}`);
      await writeWithBackpressure(process.stdout, text);
      bar?.update(first + chunks.length, { failed });
    }
  } finally {
    bar?.stop();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await chromium.close();
    await origins.close();
  }
  // With --limit an NDJSON file is read no further, so its length is unknown.
  const scope = items && options.limit !== undefined ? `the first ${formatCount(count)}` : `${formatCount(count)} of ${formatCount(available)}`;
  const summary = `ran ${scope} chunks locally in ${formatDuration(Date.now() - started)}: ${formatCount(count - failed)} done, ${formatCount(failed)} failed`;
  process.stderr.write(`${summary}\n`);
  if (failed > 0) throw new ProblemError(`${formatCount(failed)} chunk(s) failed; first: ${firstError}`);
  return 0;
}

/** A chunk's console lines as `crowdcompute run` prints them: `[chunk N] level text`. */
function consoleText(index: number, logged: NonNullable<ChunkOutcome["console"]>): string {
  const style: Record<string, "gray" | "yellow" | "red" | undefined> = { debug: "gray", warn: "yellow", error: "red" };
  let text = "";
  for (const line of logged.lines) {
    // A line's own newlines stay, indented under it (docs/architecture.md, "Printing what others wrote").
    const shown = `[chunk ${index}] ${line.level === "log" ? "" : `${safe(line.level)}: `}${safeLines(line.text).replaceAll("\n", "\n    ")}`;
    const color = style[line.level];
    text += `${color ? paint(color, shown, process.stderr) : shown}\n`;
  }
  if (logged.truncated) text += `${paint("gray", `[chunk ${index}] (it wrote more: a chunk keeps 100 lines and 16 KiB)`, process.stderr)}\n`;
  return text;
}
