// Builds the publishable package in packages/sdk/dist (docs/architecture.md, "Packages people install"):
// inside the monorepo the SDK is consumed as TypeScript source, which Node does not run from
// node_modules, so what is published is JavaScript (esbuild, one ES module per entry with the
// shared code split out) and declarations (tsc), with a package.json of its own.
//   npm run build:dist -w @crowdcompute/sdk && npm publish packages/sdk/dist
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const source = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown> & { dependencies: Record<string, string> };
const require = createRequire(import.meta.url);
const contractRoot = join(dirname(require.resolve("@crowdcompute/contract")), "..");
const contract = JSON.parse(readFileSync(join(contractRoot, "package.json"), "utf8")) as { dependencies: Record<string, string> };

rmSync(dist, { recursive: true, force: true });

// JavaScript: the contract's runtime code (none but what the SDK uses) is bundled in; esbuild
// and Node's own modules stay imports.
await build({
  entryPoints: { index: join(root, "src/index.ts"), "node/index": join(root, "src/node/index.ts") },
  outdir: dist,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["esbuild"],
  chunkNames: "shared/[name]-[hash]",
  logLevel: "warning",
});

// Declarations of the SDK and of the contract it re-exports types from, the contract's
// imports then pointed at its copy here (it is not published on its own).
const tsc = require.resolve("typescript/bin/tsc");
const config = join(root, "tsconfig.dist.json");
writeFileSync(
  config,
  JSON.stringify({
    extends: "../../tsconfig.base.json",
    compilerOptions: {
      noEmit: false,
      declaration: true,
      emitDeclarationOnly: true,
      rewriteRelativeImportExtensions: true,
      rootDir: "..",
      outDir: "dist/types",
    },
    include: ["src", "../contract/src"],
    exclude: ["src/**/*.test.ts", "../contract/src/**/*.test.ts"],
  }),
);
try {
  execFileSync(process.execPath, [tsc, "-p", config], { stdio: "inherit" });
} finally {
  rmSync(config);
}
const typesRoot = join(dist, "types");
for (const file of walk(typesRoot)) {
  const text = readFileSync(file, "utf8");
  const fixed = text
    .replace(/(from\s+|import\()(["'])@crowdcompute\/contract(?:\/([\w-]+))?\2/g, (_m, lead: string, quote: string, sub: string | undefined) => {
      let target = relative(dirname(file), join(typesRoot, "contract/src", `${sub ?? "index"}.js`)).replaceAll("\\", "/");
      if (!target.startsWith(".")) target = `./${target}`;
      return `${lead}${quote}${target}${quote}`;
    })
    .replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2");
  if (fixed !== text) writeFileSync(file, fixed);
}

const dependencies = { esbuild: source.dependencies.esbuild!, zod: contract.dependencies.zod! };
const published = {
  name: source.name,
  version: source.version,
  description: source.description,
  license: source.license,
  type: "module",
  // Node 20 or newer: the workspace itself runs on 22+, but nothing the built SDK uses needs it.
  engines: { node: ">=20" },
  keywords: source.keywords,
  sideEffects: false,
  exports: {
    ".": { types: "./types/sdk/src/index.d.ts", default: "./index.js" },
    "./node": { types: "./types/sdk/src/node/index.d.ts", default: "./node/index.js" },
    "./package.json": "./package.json",
  },
  // esbuild for the job API's bundling; zod only for the contract's types.
  dependencies,
};
writeFileSync(join(dist, "package.json"), `${JSON.stringify(published, null, 2)}\n`);
if (existsSync(join(root, "README.md"))) cpSync(join(root, "README.md"), join(dist, "README.md"));
cpSync(join(root, "../../LICENSE"), join(dist, "LICENSE"));
console.log(`built ${relative(process.cwd(), dist)}: publish with \`npm publish ${relative(process.cwd(), dist)}\``);

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith(".d.ts") ? [path] : [];
  });
}
