// Inputs as the creator gives them: a JSON array typed in, a JSON or NDJSON file,
// or a range. Parsed here so bad input gets a message before anything is sent.
import { type RangeInputs, rangeChunkCount, rangeChunkInput } from "@crowdcompute/contract/range";

export type InputsSource = { kind: "array"; values: unknown[] } | { kind: "ndjson"; lines: string[] } | { kind: "range"; range: Required<RangeInputs> };

export class InputsError extends Error {}

/** The first `token` outside JSON strings: where V8's "Unexpected token" points, without saying so. */
function tokenLine(text: string, token: string): number | null {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === token) return text.slice(0, i).split("\n").length;
  }
  return null;
}

/** V8's JSON.parse message, with a line number and without the echo of the whole input. */
function where(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const positioned = /^(.*) in JSON at position \d+ \((line \d+ column \d+)\)$/s.exec(message);
  if (positioned) return `${positioned[1]} (${positioned[2]})`;
  const unexpected = /^Unexpected token '(.)', .* is not valid JSON$/s.exec(message);
  if (unexpected) {
    const line = tokenLine(text, unexpected[1]!);
    return `Unexpected '${unexpected[1]}'${line ? ` (line ${line})` : ""}`;
  }
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}

/** A JSON array typed into the form. */
export function parseArrayText(text: string): InputsSource {
  if (!text.trim()) throw new InputsError("Enter a JSON array, e.g. [1, 2, 3].");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputsError(`Not valid JSON: ${where(text, error)}`);
  }
  if (!Array.isArray(value)) throw new InputsError("The inputs must be a JSON array: one element per chunk.");
  if (value.length === 0) throw new InputsError("Give at least one input.");
  return { kind: "array", values: value };
}

/** A file: a JSON array, or NDJSON (one JSON value per line). */
export function parseInputsFile(name: string, text: string): InputsSource {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[") && !/\.ndjson$|\.jsonl$/i.test(name)) return parseArrayText(text);
  const lines: string[] = [];
  const rows = text.split("\n");
  for (let i = 0; i < rows.length; i++) {
    const line = rows[i]!.trim();
    if (!line) continue;
    try {
      JSON.parse(line);
    } catch (error) {
      throw new InputsError(`${name}, line ${i + 1}: not valid JSON (${where(line, error).replace(/ \(line 1( column \d+)?\)$/, "")})`);
    }
    lines.push(line);
  }
  if (lines.length === 0) throw new InputsError(`${name} holds no inputs.`);
  return { kind: "ndjson", lines };
}

export interface RangeFields {
  start: string;
  end: string;
  step: string;
  size: string;
}

/** A range from the form's fields; errors by field. */
export function parseRange(fields: RangeFields): { range?: Required<RangeInputs>; errors: Partial<Record<keyof RangeFields, string>> } {
  const errors: Partial<Record<keyof RangeFields, string>> = {};
  const num = (key: keyof RangeFields, min?: number) => {
    const text = fields[key].trim();
    const n = Number(text);
    if (!text || !Number.isSafeInteger(n)) errors[key] = "Enter a whole number.";
    else if (min !== undefined && n < min) errors[key] = `Must be at least ${min}.`;
    return n;
  };
  const start = num("start");
  const end = num("end");
  const step = num("step", 1);
  const size = num("size", 1);
  if (!errors.start && !errors.end && end <= start) errors.end = "End must be greater than start (it is exclusive).";
  if (Object.keys(errors).length > 0) return { errors };
  return { range: { start, end, step, size }, errors };
}

export function chunkCount(source: InputsSource): number {
  switch (source.kind) {
    case "array":
      return source.values.length;
    case "ndjson":
      return source.lines.length;
    case "range":
      return rangeChunkCount(source.range);
  }
}

/** Chunk i's input, as the server derives it (a range's: the contract's arithmetic, contract/src/range.ts). */
export function chunkInput(source: InputsSource, i: number): unknown {
  switch (source.kind) {
    case "array":
      return source.values[i];
    case "ndjson":
      return JSON.parse(source.lines[i]!) as unknown;
    case "range":
      return rangeChunkInput(source.range, i);
  }
}
