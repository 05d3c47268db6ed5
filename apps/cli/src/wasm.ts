// A task's WebAssembly module from the command line: a .wasm binary, or WebAssembly text
// (.wat) compiled here with wabt, so examples need no toolchain.
import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { compileWat as compileWatText, WatError } from "@crowdcompute/sdk/wat";
import { UsageError } from "./errors.ts";

/** The API's cap on a module (docs/architecture.md, "Live updates, metrics, limits"). */
const maxWasmBytes = 16 * 1024 * 1024;

export async function loadWasm(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new UsageError(`--wasm: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  if (extname(path).toLowerCase() === ".wat") bytes = await compileWat(path, new TextDecoder().decode(bytes));
  if (bytes.byteLength > maxWasmBytes) throw new UsageError(`--wasm: ${path} is ${(bytes.byteLength / 1024 / 1024).toFixed(1)} MiB; the limit is 16 MiB`);
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) throw new UsageError(`--wasm: ${path} is not a valid WebAssembly module`);
  return bytes;
}

async function compileWat(path: string, text: string): Promise<Uint8Array> {
  try {
    return await compileWatText(basename(path), text);
  } catch (error) {
    if (!(error instanceof WatError)) throw error;
    throw new UsageError(error.stage === "parse" ? `--wasm: ${path} is not valid WebAssembly text:\n${error.message}` : `--wasm: ${path}: ${error.message}`);
  }
}
