// Work code as the API takes it: one ES module, a file and everything it imports (npm
// libraries too), or a self-contained function. Shared by the job API and the CLI's
// `submit` and `run`. Node only (esbuild): the browser entry of the SDK never imports it.
import { stat } from "node:fs/promises";
import { type BuildOptions, build, type Message } from "esbuild";

/** The API's cap on code (docs/architecture.md, "Live updates, metrics, limits"). */
export const maxCodeBytes = 1024 * 1024;

export interface BundledWork {
  code: string;
  /** The named exports the module has (`default`, and `reduce`/`canonicalize` when present). */
  exports: string[];
}

/** Why work code cannot be sent; nothing reached the server. */
export type WorkCodeProblem = "unreadable" | "unbundlable" | "no-default" | "too-large";

export class WorkCodeError extends Error {
  readonly problem: WorkCodeProblem;
  /** For "too-large": the bundle's size in bytes. */
  readonly bytes: number | null;

  constructor(problem: WorkCodeProblem, message: string, bytes: number | null = null) {
    super(message);
    this.name = "WorkCodeError";
    this.problem = problem;
    this.bytes = bytes;
  }
}

const common: BuildOptions = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  metafile: true,
  write: false,
  outfile: "work.js",
  logLevel: "silent",
  legalComments: "none",
};

/**
 * Bundles `entry` with esbuild into a single browser ES module. A file that cannot be read, a
 * syntax error, an unresolved import, a missing default export or a bundle over 1 MiB is a
 * `WorkCodeError`.
 */
export async function bundleWork(entry: string, { minify = false }: { minify?: boolean } = {}): Promise<BundledWork> {
  try {
    if (!(await stat(entry)).isFile()) throw new WorkCodeError("unreadable", `${entry} is not a file`);
  } catch (error) {
    if (error instanceof WorkCodeError) throw error;
    throw new WorkCodeError("unreadable", `cannot read ${entry} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  return bundled(entry, { ...common, entryPoints: [entry], minify });
}

/**
 * A self-contained work function (it may not use variables or imports from around it: only
 * its source is sent) as a module whose default export it is.
 * @example bundleWorkFunction(async (n, ctx) => n * n)
 */
export async function bundleWorkFunction(work: (input: never, ctx: never) => unknown, { minify = false }: { minify?: boolean } = {}): Promise<BundledWork> {
  if (typeof work !== "function") throw new WorkCodeError("no-default", "the work must be a function or a file");
  const source = Function.prototype.toString.call(work);
  if (/\{\s*\[native code\]\s*\}$/.test(source)) throw new WorkCodeError("unbundlable", "a native or bound function has no source to send");
  return bundled("work function", { ...common, stdin: { contents: `export default (${source});\n`, loader: "js", sourcefile: "work-function.js" }, minify });
}

async function bundled(what: string, options: BuildOptions): Promise<BundledWork> {
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build(options);
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors;
    if (!errors) throw error;
    throw new WorkCodeError("unbundlable", `cannot bundle ${what}:\n${errors.map(formatMessage).join("\n")}`);
  }
  const output = result.outputFiles!.find((file) => file.path.endsWith(".js"));
  if (!output) throw new Error(`esbuild produced no output for ${what}`);
  const exports = Object.values(result.metafile!.outputs)[0]?.exports ?? [];
  if (!exports.includes("default")) {
    throw new WorkCodeError("no-default", `${what} has no default export: a work function is \`export default async function work(input, ctx) { … }\``);
  }
  if (output.contents.byteLength > maxCodeBytes) {
    const size = (output.contents.byteLength / 1024 / 1024).toFixed(2);
    throw new WorkCodeError("too-large", `${what} bundles to ${size} MiB; the limit is 1 MiB`, output.contents.byteLength);
  }
  return { code: output.text, exports };
}

function formatMessage(message: Message): string {
  const where = message.location ? `${message.location.file}:${message.location.line}:${message.location.column + 1}: ` : "";
  return `  ${where}${message.text}`;
}
