import type { ChunkOutcome } from "@crowdcompute/sandbox";
import type { BlockReportTexts, LeasedBlock } from "@crowdcompute/sdk";

type ReportConsole = NonNullable<BlockReportTexts["console"]>;

/** What one part of a block (the chunks at `offsets`, run together) comes to. */
export interface PartReports {
  reports: BlockReportTexts[];
  done: number;
  failed: number;
  cpuMs: number;
}

/**
 * A part's outcomes as block reports: one per run of consecutive results (a report's results
 * are positional from its `offset`), the errors riding with the first. A chunk's console
 * rides with its own result or error; only chunks that wrote any carry one. Chunks this page
 * cancelled (the server said the block is gone) are not reported at all. Results stay the JSON
 * text the sandbox checked (`resultTexts`): the SDK writes them into the request as they are.
 */
export function reportsForPart(leaseId: string, outcomes: ChunkOutcome[], offsets: number[]): PartReports {
  let done = 0;
  let failed = 0;
  let cpuMs = 0;
  const errors: NonNullable<BlockReportTexts["errors"]> = [];
  const errorsLogged: ReportConsole = [];
  const reports: BlockReportTexts[] = [];
  let run: { offset: number; results: string[]; cpuMs: number; console: ReportConsole | null } | null = null;
  const runReport = (r: NonNullable<typeof run>): BlockReportTexts => {
    const report: BlockReportTexts = { leaseId, offset: r.offset, resultTexts: r.results, cpuMs: Math.round(r.cpuMs) };
    if (r.console) report.console = r.console;
    return report;
  };
  for (const [k, outcome] of outcomes.entries()) {
    const offset = offsets[k]!;
    cpuMs += outcome.cpuMs;
    if (outcome.ok) {
      done++;
      if (!run || run.offset + run.results.length !== offset) {
        if (run) reports.push(runReport(run));
        run = { offset, results: [], cpuMs: 0, console: null };
      }
      run.results.push(outcome.resultJson);
      run.cpuMs += outcome.cpuMs;
      if (outcome.console) (run.console ??= []).push(consoleEntry(offset, outcome.console));
    } else if (outcome.error.kind !== "cancelled") {
      failed++;
      errors.push({ offset, kind: outcome.error.kind, message: outcome.error.message });
      if (outcome.console) errorsLogged.push(consoleEntry(offset, outcome.console));
    }
  }
  if (run) reports.push(runReport(run));
  if (errors.length > 0) {
    let first = reports[0];
    if (first) first.errors = errors;
    else reports.push((first = { leaseId, resultTexts: [], errors, cpuMs: 0 }));
    if (errorsLogged.length > 0) first.console = [...(first.console ?? []), ...errorsLogged];
  }
  return { reports, done, failed, cpuMs };
}

function consoleEntry(offset: number, logged: NonNullable<ChunkOutcome["console"]>): ReportConsole[number] {
  return logged.truncated ? { offset, lines: logged.lines, truncated: true } : { offset, lines: logged.lines };
}

/** A report's size as JSON, roughly, from its result texts' lengths (each under 1 MiB: the sandbox checked). */
export function approximateBytes(report: BlockReportTexts): number {
  const logged = report.console?.reduce((sum, entry) => sum + 50 + entry.lines.reduce((chars, line) => chars + line.text.length + 30, 0), 0) ?? 0;
  const results = report.resultTexts.reduce((sum, text) => sum + text.length + 1, 2);
  return 200 + results + (report.errors?.reduce((sum, e) => sum + e.message.length + 50, 0) ?? 0) + logged;
}

/**
 * Work code's console lines, into this page's console, for a volunteer who asked to see them
 * (`crowdcompute volunteer --show-console` prints them from there): `[chunk N of task ID] text`.
 */
export function echoConsole(lease: LeasedBlock, offsets: number[], outcomes: ChunkOutcome[]): void {
  for (const [k, outcome] of outcomes.entries()) {
    if (!outcome.console) continue;
    const prefix = `[chunk ${lease.firstIndex + offsets[k]!} of task ${lease.taskId}]`;
    for (const line of outcome.console.lines) console[line.level](`${prefix} ${line.text}`);
    if (outcome.console.truncated) console.warn(`${prefix} (more lines were written than a chunk keeps)`);
  }
}
