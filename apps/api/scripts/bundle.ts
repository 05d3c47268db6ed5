// Bundles the Node entry (src/main.ts) into one ESM file, dist/main.js, for `npm start`.
// Why: resolving ~1,000 modules through package.json exports maps (drizzle-orm's alone is
// 179 KB, re-read per deep import) and stripping their types leaves the process at ~270 MB
// RSS before it serves anything; one pre-resolved file does not. Tests keep running src/.
import { readFile } from "node:fs/promises";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const apiRoot = fileURLToPath(new URL("..", import.meta.url));
export const bundlePath = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/**
 * Node flags `npm start` runs the bundle with (the root and api package.json say the same):
 * a 4 MiB young generation. A streamed 1M-line upload otherwise grows V8's young heap and
 * the request body's buffers to a 234 MB peak RSS; with it, 182-190 MB. The price is more
 * young-generation collections: about 5 % of HTTP dispatch throughput (three alternating
 * runs: 18.3-18.6k chunks/s against 18.9-20.4k with V8's default).
 */
export const serverNodeFlags = ["--max-semi-space-size=4"];

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

export async function bundleServer(): Promise<void> {
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
