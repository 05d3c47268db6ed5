import { ProblemError } from "./problem.ts";

/**
 * The lines of a streamed body, without holding more than one line and one network chunk.
 * A line longer than `maxLineBytes` is a 413, and a body over `maxBytes` is `tooLarge()`.
 */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array> | null, limits: { maxLineBytes: number; maxBytes: number; tooLarge: () => Error }): AsyncGenerator<string> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buffered = "";
  let received = 0;
  for await (const bytes of body) {
    received += bytes.byteLength;
    if (received > limits.maxBytes) throw limits.tooLarge();
    buffered += decoder.decode(bytes, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
    if (buffered.length > limits.maxLineBytes) {
      throw new ProblemError(413, "Payload too large", `an input line may be at most ${limits.maxLineBytes / 1024} KiB`);
    }
  }
  buffered += decoder.decode();
  if (buffered !== "") yield buffered;
}
