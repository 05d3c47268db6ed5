// A range task's chunks (docs/architecture.md, "The database"): chunk i of `{start, end, step,
// size}` is `{start: start + i·size·step, end: min(start + (i+1)·size·step, end), step}`, computed
// from the index and never stored. The server, the CLI's dry run and the task form's test run all
// derive inputs here, so a test run sees what volunteers will. Free of zod, like limits.ts.

/** A range as a task gives it; `step` defaults to 1. */
export interface RangeInputs {
  start: number;
  end: number;
  step?: number;
  size: number;
}

/** The input of one chunk of a range task. */
export interface RangeChunk {
  start: number;
  end: number;
  step: number;
}

/** Chunks in a range task: ⌈(end − start) / (step · size)⌉, none for an empty range. */
export function rangeChunkCount(range: RangeInputs): number {
  if (range.end <= range.start) return 0;
  return Math.ceil((range.end - range.start) / ((range.step ?? 1) * range.size));
}

/** The input of chunk `index` of a range task. */
export function rangeChunkInput(range: RangeInputs, index: number): RangeChunk {
  const step = range.step ?? 1;
  const span = range.size * step;
  const start = range.start + index * span;
  return { start, end: Math.min(start + span, range.end), step };
}
