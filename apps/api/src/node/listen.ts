import { createAdaptorServer } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

/**
 * Serves `fetch` on both loopbacks, 127.0.0.1 and ::1 (`localhost` may resolve to either).
 * Port 0 picks a free port on the first and reuses it on the second. A machine without IPv6
 * still serves on 127.0.0.1.
 */
export async function listenOnLoopbacks(fetch: Fetch, port: number): Promise<{ port: number; close(): Promise<void> }> {
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
  return {
    port: actualPort,
    close: () =>
      Promise.all(
        servers.map((server) => new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        })),
      ).then(() => undefined),
  };
}
