// Test support for the abuse tests and the abuse bench (bench/abuse/http.ts): one request on a connection of its own, with a body sent
// whole or in parts (a trickle), from a chosen network source through a trusted proxy.
import http from "node:http";

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export interface RawRequest {
  method?: string;
  path: string;
  token?: string;
  /** Sent as X-Forwarded-For: the server must trust the loopbacks as its proxy. */
  source?: string;
  headers?: Record<string, string>;
  /** A whole body (sent with its Content-Length), or parts sent one by one (chunked, unless headers name a Content-Length). */
  body?: string | Buffer | AsyncIterable<string | Buffer>;
  /** Aborts the request (the socket is destroyed). */
  signal?: AbortSignal;
  /** Gives up after this long without an answer (status 0). Default: none. */
  timeoutMs?: number;
  /** Called when the answer's status arrives, before its body (for streams held open). */
  onHeaders?: (status: number) => void;
}

/** Resolves with the whole answer; a reset or refused connection, or an abort, as status 0. */
export function rawRequest(base: string, request: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string | number> = { ...(request.source ? { "x-forwarded-for": request.source } : {}), ...request.headers };
  if (request.token) headers.authorization = `Bearer ${request.token}`;
  const body = request.body;
  if (typeof body === "string" || Buffer.isBuffer(body)) headers["content-length"] ??= Buffer.byteLength(body);
  else if (body && headers["content-length"] === undefined) headers["transfer-encoding"] ??= "chunked";
  if (body && !headers["content-type"]) headers["content-type"] = "application/json";
  return new Promise<RawResponse>((resolve) => {
    let settled = false;
    const settle = (response: RawResponse) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
      resolve(response);
    };
    const req = http.request({ host: hostname, port, path: request.path, method: request.method ?? (body ? "POST" : "GET"), headers, agent: false }, (response) => {
      request.onHeaders?.(response.statusCode ?? 0);
      const parts: Buffer[] = [];
      response.on("data", (part: Buffer) => parts.push(part));
      response.on("error", (error) => settle({ status: 0, headers: {}, text: error.message }));
      response.on("end", () => settle({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(parts).toString() }));
    });
    const onAbort = () => {
      req.destroy();
      settle({ status: 0, headers: {}, text: "aborted" });
    };
    const timer = request.timeoutMs ? setTimeout(onAbort, request.timeoutMs) : null;
    request.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (error) => settle({ status: 0, headers: {}, text: error.message }));
    if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
    else if (body) {
      void (async () => {
        try {
          for await (const part of body) {
            if (settled || req.destroyed) return;
            if (!req.write(part)) await new Promise((r) => req.once("drain", r));
          }
          if (!req.destroyed) req.end();
        } catch (error) {
          req.destroy(error as Error);
        }
      })();
    } else req.end();
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `part` every `everyMs`, until `signal` aborts (or `count` parts, when given). */
export async function* trickle(part: string, everyMs: number, signal: AbortSignal, count = Number.POSITIVE_INFINITY): AsyncGenerator<string> {
  for (let i = 0; i < count && !signal.aborted; i++) {
    yield part;
    await sleep(everyMs);
  }
}
