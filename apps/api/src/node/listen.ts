import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

export interface Listening {
  port: number;
  /**
   * Stops accepting connections at once, lets the requests in flight finish, and cuts those
   * still running after `drainMs` (default 0: cut at once). Resolves, when every connection
   * is closed, with the number of requests cut.
   */
  close(drainMs?: number): Promise<number>;
}

/**
 * Serves `fetch` on both loopbacks, 127.0.0.1 and ::1 (`localhost` may resolve to either).
 * Port 0 picks a free port on the first and reuses it on the second. A machine without IPv6
 * still serves on 127.0.0.1.
 */
export async function listenOnLoopbacks(fetch: Fetch, port: number): Promise<Listening> {
  const servers: Server[] = [];
  const listen = (host: string, at: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createAdaptorServer({ fetch }) as Server;
      server.once("error", reject);
      server.listen(at, host, () => resolve(server));
    });
  const first = await listen("127.0.0.1", port);
  servers.push(first);
  const actualPort = (first.address() as AddressInfo).port;
  try {
    servers.push(await listen("::1", actualPort));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EADDRNOTAVAIL" && code !== "EAFNOSUPPORT") {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
      throw error;
    }
  }
  const responses = servers.map(responsesInFlight);
  return {
    port: actualPort,
    close: async (drainMs = 0) => {
      const cut = await Promise.all(servers.map((server, i) => drain(server, responses[i]!, drainMs)));
      return cut.reduce((sum, n) => sum + n, 0);
    },
  };
}

/** The server's responses not yet closed, kept up to date. */
function responsesInFlight(server: Server): Set<ServerResponse> {
  const responses = new Set<ServerResponse>();
  server.on("request", (_request, response: ServerResponse) => {
    responses.add(response);
    response.once("close", () => responses.delete(response));
  });
  return responses;
}

/**
 * `server.close()` alone stops accepting and closes the connections idle at that moment, but
 * a keep-alive connection whose response ends later stays open until its keep-alive timeout
 * (5 s), and its client may send another request on it meanwhile. So responses not yet
 * started say `Connection: close`, and each connection closes as soon as its response ends.
 */
function drain(server: Server, responses: Set<ServerResponse>, drainMs: number): Promise<number> {
  const closeAfter = (response: ServerResponse) => {
    if (!response.headersSent) response.setHeader("connection", "close");
    response.once("finish", () => setImmediate(() => server.closeIdleConnections()));
  };
  for (const response of responses) closeAfter(response);
  server.on("request", (_request, response: ServerResponse) => closeAfter(response));
  return new Promise<number>((resolve) => {
    let cut = 0;
    const timer = setTimeout(() => {
      cut = responses.size;
      server.closeAllConnections();
    }, drainMs);
    server.close(() => {
      clearTimeout(timer);
      resolve(cut);
    });
  });
}
