// Reading inputs from files for an upload (Node only).
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { inputParts, uploadPartChars } from "../inputs.ts";

/** The non-blank lines of an NDJSON file, in parts of at most about `maxChars` characters. */
export function ndjsonFileParts(path: string, maxChars = uploadPartChars): AsyncGenerator<string[]> {
  return inputParts(createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity }), { maxChars, lines: true });
}
