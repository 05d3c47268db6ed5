// Terminal output: colours and live lines on a TTY, plain lines when piped, JSON for scripts.
import { once } from "node:events";
import { styleText } from "node:util";
import { escapeControlChars, escapeJsonText } from "@crowdcompute/sdk";

type Style = Parameters<typeof styleText>[0];

/** `text` in `style` when `stream` is a colour terminal (NO_COLOR and FORCE_COLOR respected), else as is. */
export function paint(style: Style, text: string, stream: NodeJS.WriteStream = process.stdout): string {
  return styleText(style, text, { stream });
}

export function isTty(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true;
}

/**
 * Text a volunteer or creator wrote (a name, a progress or error message, a description), as
 * printed: one line, control characters shown as escapes (docs/architecture.md, "Printing what
 * others wrote"). Every such text goes through this or `safeLines` before it is printed.
 */
export const safe = (text: string): string => escapeControlChars(text);

/** Free text that is lines (console output): control characters escaped, newlines and tabs kept. */
export const safeLines = (text: string): string => escapeControlChars(text, { multiline: true });

/** A value as one line of JSON, with the characters JSON.stringify leaves raw (C1 and bidirectional controls) escaped too. */
export const jsonLine = (value: unknown): string => escapeJsonText(JSON.stringify(value));

/** One line of JSON on stdout: what `--json` prints. */
export function printJson(value: unknown): void {
  process.stdout.write(`${jsonLine(value)}\n`);
}

/** Writes and waits when the pipe is full, so a large download never piles up in memory. */
export async function writeWithBackpressure(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
}

/** "1 min 5 s", "4.2 s", "350 ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatRate(perSecond: number): string {
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1);
}

export const formatCount = (n: number): string => n.toLocaleString("en-US");
