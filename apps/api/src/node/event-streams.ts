import { followHeader } from "../lib/follow.ts";

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

/**
 * Server-Sent Events never end on their own, so a shutdown that waited for them would always
 * wait its whole timeout. This wraps `fetch` so that `endAll()` ends every open event stream
 * cleanly (the browser's EventSource then reconnects, to whichever process still serves) and
 * cancels the route's own stream, which stops its loop. A followed results response is
 * broken instead of ended (its client would take a clean end for the task's end) and resumes
 * from its last cursor (docs/architecture.md, Following results).
 */
export function endableEventStreams(fetch: Fetch): { fetch: Fetch; endAll(): void } {
  const open = new Set<(shutdown?: boolean) => void>();
  let closing = false;
  const wrapped: Fetch = async (request, env) => {
    const response = await fetch(request, env);
    const follow = response.headers.has(followHeader);
    if (!response.body || !(follow || response.headers.get("content-type")?.startsWith("text/event-stream"))) return response;
    const source = response.body.getReader();
    let ended = false;
    // `shutdown`: ended by endAll(), where a followed response must not look complete.
    let end = (_shutdown = false) => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        end = (shutdown = false) => {
          if (ended) return;
          ended = true;
          open.delete(end);
          if (shutdown && follow) controller.error(followCut());
          else controller.close();
          source.cancel().catch(() => {});
        };
        open.add(end);
        if (closing) end(true); // began on a kept-alive connection after endAll()
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
    for (const end of [...open]) end(true);
  };
  return { fetch: wrapped, endAll };
}

/** What the Node adapter logs for each followed response the shutdown cuts: one line, no stack. */
function followCut(): Error {
  const message = "shutdown: cut a followed results response (its client resumes from its last cursor)";
  return Object.assign(new Error(message), { stack: message });
}
