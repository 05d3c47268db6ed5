import { Row, Table } from "../../components/ui/table.tsx";
import { formatDuration, formatNumber, plural } from "../../lib/format.ts";
import type { TestRunReport } from "./test-run.ts";

/** JSON for a table cell, cut short. */
export function preview(value: unknown, max = 160): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? "undefined";
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Each test chunk's input, result or error, and CPU time. */
export function TestRunResults({ report }: { report: TestRunReport }) {
  const failed = report.chunks.filter((c) => !c.outcome.ok).length;
  const cpu = report.chunks.reduce((sum, c) => sum + c.outcome.cpuMs, 0);
  return (
    <div className="mt-4" aria-live="polite">
      <p className="mb-2 text-sm font-medium" data-testid="test-run-summary">
        {formatNumber(report.chunks.length - failed)} of {plural(report.chunks.length, "chunk")} succeeded
        {failed > 0 ? `, ${failed} failed` : ""} · {formatDuration(report.wallMs)} wall time · {formatDuration(cpu)} CPU
      </p>
      <Table label="Test run results" columns={["Chunk", "Input", "Result or error", "CPU"]}>
        {report.chunks.map((chunk) => (
          <Row key={chunk.index}>
            <td className="py-2 pr-3 tabular-nums">{formatNumber(chunk.index)}</td>
            <td className="py-2 pr-3">
              <code className="font-mono text-xs break-all">{preview(chunk.input, 80)}</code>
            </td>
            <td className="py-2 pr-3">
              {chunk.outcome.ok ? (
                <code className="font-mono text-xs break-all text-emerald-800" data-testid="test-result">
                  {preview(chunk.result)}
                </code>
              ) : (
                <span className="text-red-700" data-testid="test-error">
                  <strong>{chunk.outcome.error.kind}</strong>: {chunk.outcome.error.message}
                </span>
              )}
            </td>
            <td className="py-2 tabular-nums whitespace-nowrap">{formatDuration(chunk.outcome.cpuMs)}</td>
          </Row>
        ))}
      </Table>
    </div>
  );
}
