// Reading inputs from files for an upload (Node only).
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { uploadPartChars } from "../inputs.ts";

/** The non-blank lines of an NDJSON file, in parts of at most about `maxChars` characters. */
export async function* ndjsonFileParts(path: string, maxChars = uploadPartChars): AsyncGenerator<string[]> {
  let part: string[] = [];
  let size = 0;
  for await (const line of createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    if (part.length > 0 && size + line.length + 1 > maxChars) {
      yield part;
      part = [];
      size = 0;
    }
    part.push(line);
    size += line.length + 1;
  }
  if (part.length > 0) yield part;
}
