type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

/**
 * Server-Sent Events never end on their own, so a shutdown that waited for them would always
 * wait its whole timeout. This wraps `fetch` so that `endAll()` ends every open event stream
 * cleanly (the browser's EventSource then reconnects, to whichever process still serves) and
 * cancels the route's own stream, which stops its loop.
 */
export function endableEventStreams(fetch: Fetch): { fetch: Fetch; endAll(): void } {
  const open = new Set<() => void>();
  let closing = false;
  const wrapped: Fetch = async (request, env) => {
    const response = await fetch(request, env);
    if (!response.body || !response.headers.get("content-type")?.startsWith("text/event-stream")) return response;
    const source = response.body.getReader();
    let ended = false;
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        end = () => {
          if (ended) return;
          ended = true;
          open.delete(end);
          controller.close();
          source.cancel().catch(() => {});
        };
        open.add(end);
        if (closing) end(); // began on a kept-alive connection after endAll()
      },
      async pull(controller) {
        const { done, value } = await source.read();
        if (ended) return;
        if (done) end();
        else controller.enqueue(value);
      },
      cancel(reason) {
        ended = true;
        open.delete(end);
        return source.cancel(reason);
      },
    });
    return new Response(body, response);
  };
  const endAll = () => {
    closing = true;
    for (const end of [...open]) end();
  };
  return { fetch: wrapped, endAll };
}
