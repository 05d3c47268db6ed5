// Builds a greyscale PGM image from `crowdcompute results` of the Mandelbrot task.
// Usage: crowdcompute results ID | node examples/mandelbrot/assemble.js > mandelbrot.pgm
import { createInterface } from "node:readline";

const rows = [];
let maxIter = 1;
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const { input, status, result } = JSON.parse(line);
  if (status !== "done") throw new Error(`row ${input.y} failed: ${JSON.stringify(line)}`);
  rows[input.y] = result;
  maxIter = input.maxIter;
}
const height = rows.length;
const width = rows[0]?.length ?? 0;
if (height === 0 || rows.some((row) => !row)) throw new Error("some rows are missing: is the task done?");
const pixels = Buffer.alloc(width * height);
for (const [y, row] of rows.entries()) {
  for (const [x, n] of row.entries()) pixels[y * width + x] = n >= maxIter ? 0 : 255 - Math.floor((255 * n) / maxIter);
}
process.stdout.write(Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`), pixels]));
