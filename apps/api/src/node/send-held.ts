import type { ServerResponse } from "node:http";
import { takeHeldAnswer } from "../lib/held-answers.ts";

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

let sent: Response | undefined;
/**
 * What tells @hono/node-server the response is written already: its X_ALREADY_SENT header, on a
 * response it reads through `headers` (reading `body` turns its own Response class into the
 * platform's; one it keeps as is, it writes out again).
 */
function alreadySent(): Response {
  if (!sent) {
    sent = new Response(null, { headers: { "x-hono-already-sent": "true" } });
    void sent.body;
  }
  return sent;
}

/**
 * node-server builds a full web Request (headers, body stream, signal) the first time a
 * middleware reads the request's body stream (lib/limits.ts does not on Node), and a Headers
 * object the first time one reads a header; it keeps both on its own request, and keeps that
 * while the response is open, for its close handler, which needs only its abort controller.
 * A held request was read whole before its handler ran: both go now (its getter would build
 * the Headers again if asked). Found by their symbols' names; where they are not, nothing is
 * done. About 1 KB a waiting request (docs/architecture.md, "Dispatch", waiting volunteers).
 */
function forgetWebRequest(request: Request): void {
  for (const key of Object.getOwnPropertySymbols(request)) {
    // Set to undefined, not deleted: a deleted property turns the object into a dictionary,
    // 427 bytes a waiting request more (heap snapshot, 10,000 waiting: 4.3 MiB).
    if (key.description === "requestCache" || key.description === "headersKey") (request as unknown as Record<symbol, unknown>)[key] = undefined;
  }
}

/** `headers` as node writes them (a record built here would stay in the closure below while the request waits). */
function nodeHeaders(headers: Headers): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) record["set-cookie"] = cookies;
  return record;
}

/**
 * Wraps `fetch` so that a response whose body a handler held (lib/held-answers.ts, a waiting
 * lease request) is written here: its status and headers, every middleware's included, at
 * once, and its body to the node response when it comes. A held request keeps no web stream,
 * reader or write loop (docs/architecture.md, "Dispatch", waiting volunteers).
 */
export function sendingHeldAnswers(fetch: Fetch): Fetch {
  return async (request, bindings) => {
    const response = await fetch(request, bindings);
    const outgoing = (bindings as { outgoing?: ServerResponse } | undefined)?.outgoing;
    const body = outgoing && takeHeldAnswer(outgoing);
    if (!outgoing || !body) return response;
    outgoing.writeHead(response.status, nodeHeaders(response.headers));
    outgoing.flushHeaders();
    forgetWebRequest(request);
    body.attach(outgoing);
    return alreadySent();
  };
}
