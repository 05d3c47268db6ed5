// Build step shared by the web app (vite.config.ts) and the API's Node build (scripts/bundle.ts):
// writes `.br` and `.gz` beside each text file, so the Node entry serves compressed bytes
// without compressing per request (@hono/node-server's serveStatic `precompressed`).
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const compressible = /\.(js|mjs|css|html|svg|json|webmanifest|txt)$/;
/** Smaller files are not worth a second request-time lookup. */
const minBytes = 1024;
/**
 * Brotli's best quality is ~15× slower than quality 9 for ~10 % smaller files: worth it for
 * the app's own scripts (a few hundred KB), not for the 4 MB API reference script (8 s).
 */
const bestQualityUpTo = 1024 * 1024;

/** Compresses every text file under `dir` (recursively) that is at least 1 KiB; returns their paths. */
export function precompressDir(dir: string): string[] {
  const done: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    const path = join(dir, entry);
    if (!compressible.test(path) || !statSync(path).isFile()) continue;
    const bytes = readFileSync(path);
    if (bytes.length < minBytes) continue;
    const quality = bytes.length <= bestQualityUpTo ? constants.BROTLI_MAX_QUALITY : 9;
    writeFileSync(`${path}.br`, brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } }));
    writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }));
    done.push(path);
  }
  return done;
}
