/**
 * The lines of a response body as they arrive, without their LF (a CRLF line keeps its CR:
 * CSV's lines are CRLF, and a download passes them on as they are), empty ones included. What follows the last break is not a complete line; `tail` says what becomes of
 * it: `drop` it, `yield` it (a body that may end without a final break), or `throw` (a
 * stream that must end on one: text after the last break means it broke inside a line).
 */
export async function* bodyLines(response: Response, tail: "drop" | "yield" | "throw"): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      yield line;
    }
  }
  buffered += decoder.decode();
  if (!buffered.trim() || tail === "drop") return;
  if (tail === "throw") throw new TypeError("the stream ended inside a line");
  yield buffered;
}
