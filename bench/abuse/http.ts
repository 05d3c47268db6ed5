// The abuse bench's HTTP client (bench/abuse/harness.ts): one request on a connection of its
// own, from a chosen network source through the API's trusted loopback proxy.
import http from "node:http";

/** The network source the normal clients send as, and the one an attacker sends as by default. */
export const normalSource = "198.51.100.10";
export const attackerSource = "203.0.113.66";

/** Headers that make a request come from `source` through the trusted loopback proxy. */
const fromSource = (source: string) => ({ "x-forwarded-for": source });

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export interface RawRequest {
  method?: string;
  path: string;
  token?: string;
  /** Default: the attacker's source. */
  source?: string;
  headers?: Record<string, string>;
  /** A whole body, or parts written one by one (`await`ed between: a trickle sleeps there). */
  body?: string | Buffer | AsyncIterable<string | Buffer>;
  /** Aborts the request (the socket is destroyed). */
  signal?: AbortSignal;
  /** Gives up after this long without an answer (status 0). Default: none. */
  timeoutMs?: number;
  /** Called when the answer's status arrives, before its body (for streams held open). */
  onHeaders?: (status: number) => void;
}

/**
 * One request on a connection of its own (no agent), answered in full. A connection reset,
 * a refused connection or an abort resolve as status 0 with the error's text: an attack
 * counts them, it does not stop on them.
 */
export function rawRequest(base: string, request: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string | number> = { ...fromSource(request.source ?? attackerSource), ...request.headers };
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
          req.end();
        } catch (error) {
          req.destroy(error as Error);
        }
      })();
    } else req.end();
  });
}
