import { ProblemError } from "./problem.ts";

/**
 * The lines of a streamed body, without holding more than one line and one network chunk.
 * A line longer than `maxLineBytes` is a 413, and the whole body is capped at `maxBytes`.
 */
export async function* ndjsonLines(
  body: ReadableStream<Uint8Array> | null,
  limits: { maxLineBytes: number; maxBytes: number },
): AsyncGenerator<string> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buffered = "";
  let received = 0;
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    received += bytes.byteLength;
    if (received > limits.maxBytes) {
      throw new ProblemError(413, "Payload too large", `an inputs upload may be at most ${limits.maxBytes / 1024 / 1024} MiB; split it with ?offset=`);
    }
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
