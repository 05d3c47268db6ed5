// CSV of results, as the server writes `?format=csv`: columns
// index,status,input,result,error; index and status as they are, the others as JSON text.
import type { ResultLine } from "@crowdcompute/sdk";

/** Lines end in CRLF, as RFC 4180 and the server have them. */
export const csvHeader = "index,status,input,result,error\r\n";

/** RFC 4180: quote a cell holding a comma, a quote or a line break, doubling its quotes. */
function cell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One result as a CSV line, CRLF included. */
export function csvRow(line: ResultLine): string {
  const result = line.status === "done" ? JSON.stringify(line.result ?? null) : "";
  const error = line.status === "failed" ? JSON.stringify(line.error) : "";
  return `${[String(line.index), line.status, JSON.stringify(line.input ?? null), result, error].map(cell).join(",")}\r\n`;
}
