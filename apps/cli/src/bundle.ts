// Work code as the API takes it: one ES module, the file and everything it imports.
import { stat } from "node:fs/promises";
import { build, type Message } from "esbuild";
import { UsageError } from "./errors.ts";

/** The API's cap on code (DESIGN §4). */
export const maxCodeBytes = 1024 * 1024;

export interface BundledWork {
  code: string;
  /** The named exports the module has (`default`, and `reduce`/`canonicalize` when present). */
  exports: string[];
}

/**
 * Bundles `entry` with esbuild into a single browser ES module, so work code may import
 * npm libraries and other files. A syntax error, an unresolved import, a missing default
 * export or an oversized result is a usage error: nothing is sent.
 */
export async function bundleWork(entry: string, { minify = false }: { minify?: boolean } = {}): Promise<BundledWork> {
  try {
    if (!(await stat(entry)).isFile()) throw new UsageError(`${entry} is not a file`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read ${entry} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  let result;
  try {
    result = await build({
      entryPoints: [entry],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify,
      metafile: true,
      write: false,
      outfile: "work.js",
      logLevel: "silent",
      legalComments: "none",
    });
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors;
    if (!errors) throw error;
    throw new UsageError(`cannot bundle ${entry}:\n${errors.map(formatMessage).join("\n")}`);
  }
  const output = result.outputFiles.find((file) => file.path.endsWith(".js"));
  if (!output) throw new Error(`esbuild produced no output for ${entry}`);
  const exports = Object.values(result.metafile.outputs)[0]?.exports ?? [];
  if (!exports.includes("default")) {
    throw new UsageError(`${entry} has no default export: a work function is \`export default async function work(input, ctx) { … }\``);
  }
  if (output.contents.byteLength > maxCodeBytes) {
    const size = (output.contents.byteLength / 1024 / 1024).toFixed(2);
    throw new UsageError(`${entry} bundles to ${size} MiB; the limit is 1 MiB${minify ? "" : " (try --minify)"}`);
  }
  return { code: output.text, exports };
}

function formatMessage(message: Message): string {
  const where = message.location ? `${message.location.file}:${message.location.line}:${message.location.column + 1}: ` : "";
  return `  ${where}${message.text}`;
}
