// Bundles the Node entry (src/main.ts) into one ESM file, dist/main.js, for `npm start`.
// Why: resolving ~1,000 modules through package.json exports maps (drizzle-orm's alone is
// 179 KB, re-read per deep import) and stripping their types leaves the process at ~270 MB
// RSS before it serves anything; one pre-resolved file does not. Tests keep running src/.
import { copyFileSync, mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { precompressDir } from "@crowdcompute/tooling/precompress";
import { build, type Plugin } from "esbuild";

const apiRoot = fileURLToPath(new URL("..", import.meta.url));
export const bundlePath = fileURLToPath(new URL("../dist/main.js", import.meta.url));
/** The API reference page's script, which the Node entry serves (src/node/server.ts). */
export const docsScriptPath = fileURLToPath(new URL("../dist/docs/scalar.js", import.meta.url));
/** The same script as a Workers static asset at its URL's path (wrangler.toml's [assets]). */
const workersDocsScriptPath = fileURLToPath(new URL("../dist/workers-assets/api/docs/scalar.js", import.meta.url));

/**
 * Node flags `npm start` runs the bundle with (the root and api package.json say the same):
 * - a 4 MiB young generation. A streamed 1M-line upload otherwise grows V8's young heap and
 *   the request body's buffers to a 234 MB peak RSS; with it, 182-190 MB. The price is more
 *   young-generation collections: about 5 % of HTTP dispatch throughput (three alternating
 *   runs: 18.3-18.6k chunks/s against 18.9-20.4k with V8's default).
 * - a 1 GiB limit on the old generation. Not for the limit itself (the server's live heap
 *   stays under ~60 MiB through a 1M-chunk task) but for how V8 grows its heap: it lets the old
 *   generation reach up to ~4× its live size when the limit is large (Node's default here:
 *   4 GiB) and less below 2 GiB. Through upload, compute at full speed and download of 1M
 *   chunks on Postgres (bench/transfer), the peak RSS goes from 207-248 MiB to 150-165 MiB
 *   (heap committed at its peak: 112-147 MiB against 55-61), for ~10 % of the compute phase's
 *   throughput (145-220k chunks/s against 182-240k, alternating runs on a noisy 2-core box).
 *   `--optimize-for-size` got 124-139 MiB but cost ~30 % of it (146-164k).
 * - the old generation grown by 30 % of what lived after each full collection (V8 takes ~60 %
 *   at a 1 GiB limit). Ten thousand waiting volunteers (bench/waiting-10k, ~95 MiB live)
 *   held RSS at 276-281 MiB waiting and 283-286 MiB at the hand-out's peak, against 290-300 and
 *   310-322 MiB without, three alternating pairs on 2026-12-08; bench/dispatch's HTTP paths did
 *   not move (blocks of 64: the API 35-39 µs a chunk either way, two alternating pairs).
 * - WebAssembly on V8's baseline compiler only, which matters for the embedded database alone
 *   (Postgres compiled to WebAssembly; a Postgres server means no WebAssembly here).
 *   Optimizing Postgres' hottest functions took the process from ~250 MB to ~700-740 MB RSS
 *   for a second or more, on first use and again later; without it the embedded server stays
 *   at ~170-270 MB through upload, compute and download, for about a third of the speed
 *   (bench/transfer with BENCH_EMBEDDED=1, 200k chunks: upload 20k lines/s against 67-75k).
 *   An embedded install favours memory; DATABASE_URL is for throughput.
 */
export const serverNodeFlags = ["--max-semi-space-size=4", "--max-old-space-size=1024", "--heap-growing-percent=30", "--liftoff-only"];

/**
 * Our own modules find files beside themselves (migrations, the web app, a package's
 * assets) through `import.meta.url`. In the bundle that would name dist/main.js, so each
 * one gets its source file's URL back, relative to the bundle: the checkout may move.
 */
const keepOwnModuleUrls: Plugin = {
  name: "keep-own-module-urls",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes("/node_modules/")) return undefined;
      const source = await readFile(args.path, "utf8");
      if (!source.includes("import.meta.url")) return { contents: source, loader: "ts" };
      const fromBundle = relative(dirname(bundlePath), args.path);
      const url = `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`;
      return { contents: source.replaceAll("import.meta.url", url), loader: "ts" };
    });
  },
};

/**
 * Copies Scalar's standalone script out of the package, compressed beside it: the one file
 * of @scalar the server needs, so that @scalar is a dev dependency (lib/api-docs.ts).
 */
function copyDocsScript(): void {
  const source = join(dirname(createRequire(import.meta.url).resolve("@scalar/api-reference")), "browser", "standalone.js");
  mkdirSync(dirname(docsScriptPath), { recursive: true });
  copyFileSync(source, docsScriptPath);
  precompressDir(dirname(docsScriptPath));
  // Workers compress assets themselves: the plain file only.
  mkdirSync(dirname(workersDocsScriptPath), { recursive: true });
  copyFileSync(source, workersDocsScriptPath);
}

export async function bundleServer(): Promise<void> {
  copyDocsScript();
  await build({
    absWorkingDir: apiRoot,
    entryPoints: ["src/main.ts"],
    outfile: bundlePath,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // PGlite loads its WebAssembly and data files from beside its own module.
    external: ["@electric-sql/pglite", "@electric-sql/pglite/*"],
    // CommonJS dependencies call require() for Node's built-ins.
    banner: { js: 'import { createRequire as __ccCreateRequire } from "node:module";\nconst require = __ccCreateRequire(import.meta.url);' },
    plugins: [keepOwnModuleUrls],
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
  });
}

if (import.meta.main) {
  await bundleServer();
  console.log(`bundled the Node entry into ${relative(process.cwd(), bundlePath)}`);
}
