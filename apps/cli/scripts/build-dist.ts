// Builds the publishable `crowdcompute` package in apps/cli/dist (docs/architecture.md,
// "Packages people install"): inside the monorepo the CLI is TypeScript run by Node 24's type
// stripping, with the SDK, contract and sandbox as workspace sources; what is published is
// JavaScript for Node 20 or newer. esbuild bundles the workspace code (the sandbox's built
// bootstrap and the dry-run page included: `run` needs no build tool of its own); the npm
// libraries stay imports, listed as the package's only dependencies.
//   npm run build:dist -w @crowdcompute/cli && npm pack apps/cli/dist
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const repo = join(root, "../..");
const dist = join(root, "dist");
type Manifest = { version: string; license: string };
const readManifest = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Manifest;
const cli = readManifest(join(root, "package.json"));

// The npm libraries the bundle imports (wabt through the SDK's `wat` entry, for `--wasm f.wat`):
// installed beside it rather than copied in, each pinned to the version this workspace installed,
// the one its tests ran (a later minor of puppeteer-core may use what Node 20 lacks).
const require = createRequire(join(root, "package.json"));
const installed = (name: string) => {
  const dir = require.resolve.paths(name)?.find((modules) => existsSync(join(modules, name, "package.json")));
  if (!dir) throw new Error(`${name} is not installed: run npm install`);
  return readManifest(join(dir, name, "package.json")).version;
};
const dependencies: Record<string, string> = Object.fromEntries(["cli-progress", "commander", "esbuild", "puppeteer-core", "wabt"].map((name) => [name, installed(name)]));

rmSync(dist, { recursive: true, force: true });

// The dry-run page (the sandbox host `run` drives in Chromium), built now and carried as a
// string: from source, apps/cli/src/local-run/servers.ts bundles it on each run.
const page = await build({
  entryPoints: [join(root, "src/local-run/page.ts")],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "chrome120",
  minify: true,
  write: false,
  logLevel: "warning",
});
const pageScript = page.outputFiles[0]!.text;

const result = await build({
  entryPoints: { "bin/crowdcompute": join(root, "src/main.ts") },
  outdir: dist,
  bundle: true,
  // Commands load their modules when run (`status` never loads puppeteer-core): one chunk each.
  splitting: true,
  chunkNames: "lib/[name]-[hash]",
  format: "esm",
  platform: "node",
  target: "node20",
  external: Object.keys(dependencies),
  define: { CROWDCOMPUTE_LOCAL_RUN_PAGE: JSON.stringify(pageScript) },
  banner: { js: "#!/usr/bin/env node" },
  metafile: true,
  logLevel: "warning",
});

// Every package the output imports must be a dependency, or the install would not run.
for (const output of Object.values(result.metafile.outputs)) {
  for (const { path, external } of output.imports) {
    if (!external || path.startsWith("node:")) continue;
    const name = path.startsWith("@") ? path.split("/").slice(0, 2).join("/") : path.split("/")[0]!;
    if (!(name in dependencies)) throw new Error(`the bundle imports ${path}, which is not one of the package's dependencies`);
  }
}

const published = {
  name: "crowdcompute",
  version: cli.version,
  description: "Lend this machine's CPUs to a CrowdCompute server through headless Chromium, or submit and follow tasks on one",
  license: cli.license,
  type: "module",
  bin: { crowdcompute: "bin/crowdcompute.js" },
  engines: { node: ">=20" },
  keywords: ["crowdcompute", "volunteer computing", "distributed computing", "cli"],
  dependencies,
};
writeFileSync(join(dist, "package.json"), `${JSON.stringify(published, null, 2)}\n`);
cpSync(join(root, "README.md"), join(dist, "README.md"));
cpSync(join(repo, "LICENSE"), join(dist, "LICENSE"));
const where = relative(repo, dist);
console.log(`built ${where}: \`npm pack ${where}\` makes crowdcompute-${cli.version}.tgz (\`npm publish ${where}\` publishes it)`);
