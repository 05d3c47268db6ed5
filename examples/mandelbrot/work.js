// Mandelbrot rows: each input is { y, width, height, maxIter } for one row of the image;
// the result is the row's escape counts. `assemble.js` turns the results into a PGM image.
export default function work({ y, width, height, maxIter }) {
  const row = new Array(width);
  const ci = -1.2 + (2.4 * y) / (height - 1);
  for (let x = 0; x < width; x++) {
    const cr = -2.2 + (3.2 * x) / (width - 1);
    let zr = 0;
    let zi = 0;
    let i = 0;
    while (i < maxIter && zr * zr + zi * zi <= 4) {
      const t = zr * zr - zi * zi + cr;
      zi = 2 * zr * zi + ci;
      zr = t;
      i++;
    }
    row[x] = i;
  }
  return row;
}
