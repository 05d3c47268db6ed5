/** Reads Server-Sent Events from a response, one `{event, data, id}` at a time. */
export function sseReader(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(): Promise<{ event: string; data: string; id: string | null } | null> {
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          let event = "message";
          let id: string | null = null;
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            else if (line.startsWith("id:")) id = line.slice(3).trim();
          }
          if (data.length > 0) return { event, data: data.join("\n"), id };
          continue; // a comment (keep-alive)
        }
        const { value, done } = await reader.read();
        if (done) return null;
        buffered += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}
