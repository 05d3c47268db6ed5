// Bundles the frame bootstrap (with the worker bootstrap inlined as a string) into
// dist/bootstrap.js: `bootstrapScript` and the CSP hash of exactly that source.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build } from "esbuild";

const root = fileURLToPath(new URL(".", import.meta.url));

const common: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "chrome120",
  minify: true,
  legalComments: "none",
  charset: "ascii",
  write: false,
};

async function bundle(entry: string, define?: Record<string, string>): Promise<string> {
  const result = await build({ ...common, entryPoints: [entry], define });
  const output = result.outputFiles?.[0];
  if (!output) throw new Error(`esbuild produced no output for ${entry}`);
  return output.text.trimEnd();
}

/** Builds and writes dist/bootstrap.js (+ .d.ts); returns the frame source. */
export async function buildBootstrap(): Promise<{ script: string; sha256: string }> {
  const workerSource = await bundle("src/worker/worker.ts");
  const script = await bundle("src/frame/frame.ts", { __CC_WORKER_SOURCE__: JSON.stringify(workerSource) });
  // The script is inlined in HTML: these would end or re-enter the script element early.
  if (/<\/script|<!--|<script/i.test(script)) throw new Error("bootstrap source contains an HTML script-ending sequence");
  const sha256 = createHash("sha256").update(script, "utf8").digest("base64");
  await mkdir(new URL("dist/", import.meta.url), { recursive: true });
  await writeFile(new URL("dist/bootstrap.js", import.meta.url), `export const bootstrapScript = ${JSON.stringify(script)};\nexport const bootstrapSha256 = ${JSON.stringify(sha256)};\n`);
  await writeFile(
    new URL("dist/bootstrap.d.ts", import.meta.url),
    "/** The frame bootstrap, inlined as the sandbox document's only script. */\nexport declare const bootstrapScript: string;\n/** base64 sha256 of `bootstrapScript`, for the CSP `script-src 'sha256-…'`. */\nexport declare const bootstrapSha256: string;\n",
  );
  return { script, sha256 };
}

if (import.meta.main) {
  const { script } = await buildBootstrap();
  console.log(`dist/bootstrap.js: frame bootstrap ${script.length} bytes`);
}
