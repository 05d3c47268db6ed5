// CSV of results, as the server writes `?format=csv`: columns
// index,status,input,result,error; index and status as they are, the others as JSON text.
import { escapeJsonText, type ResultLine } from "@crowdcompute/sdk";

/** Lines end in CRLF, as RFC 4180 and the server have them. */
export const csvHeader = "index,status,input,result,error\r\n";

/** RFC 4180: quote a cell holding a comma, a quote or a line break, doubling its quotes. */
function cell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One result as a CSV line, CRLF included; its JSON cells have C1 and bidirectional controls escaped as well (the same values). */
export function csvRow(line: ResultLine): string {
  const json = (value: unknown) => escapeJsonText(JSON.stringify(value));
  const result = line.status === "done" ? json(line.result ?? null) : "";
  const error = line.status === "failed" ? json(line.error) : "";
  return `${[String(line.index), line.status, json(line.input ?? null), result, error].map(cell).join(",")}\r\n`;
}
