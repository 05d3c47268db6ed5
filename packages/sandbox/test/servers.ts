// The two origins of a real deployment, on loopback: the app (http://localhost:A) and
// the sandbox (http://127.0.0.1:B), plus a listener that work code must never reach.
import { createSocket } from "node:dgram";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { sandboxDocument } from "../src/document.ts";

export interface TestServers {
  appOrigin: string;
  sandboxOrigin: string;
  /** http://127.0.0.1:C/ */
  listenerUrl: string;
  /** TCP connections the listener accepted (counts WebSocket upgrades and blocked requests alike). */
  listenerConnections(): number;
  /** Paths of the HTTP requests (and WebSocket upgrades) the listener saw. */
  listenerRequests(): string[];
  /** A UDP socket on 127.0.0.1 (STUN for WebRTC, QUIC for WebTransport) and the datagrams it got. */
  udpPort: number;
  udpPackets(): number;
  /** Every request the app origin saw, in order (the page itself is `/` and `/host.js`). */
  appRequests(): string[];
  /** Requests the sandbox origin saw for anything but its document. */
  sandboxStrayRequests(): string[];
  close(): Promise<void>;
}

const packageRoot = fileURLToPath(new URL("..", import.meta.url));

/** The host module as the app page gets it, exposed as `window.ccSandbox`. */
async function bundleHost(): Promise<string> {
  const result = await build({
    stdin: { contents: 'import * as host from "./src/host.ts"; window.ccSandbox = host;', resolveDir: packageRoot, loader: "ts" },
    bundle: true,
    format: "iife",
    target: "chrome120",
    write: false,
  });
  return result.outputFiles[0]?.text ?? "";
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

async function listen(handler: Handler, host: string, port = 0): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

const portOf = (server: Server): number => (server.address() as AddressInfo).port;

export async function startServers(): Promise<TestServers> {
  const hostScript = await bundleHost();
  const servers: Server[] = [];

  const appLog: string[] = [];
  const app: Handler = (request, response) => {
    appLog.push(request.url ?? "");
    if (request.url === "/host.js") {
      response.writeHead(200, { "Content-Type": "text/javascript" }).end(hostScript);
    } else if (request.url === "/") {
      response.writeHead(200, { "Content-Type": "text/html" }).end('<!doctype html><title>app</title><script src="/host.js"></script>');
    } else {
      response.writeHead(404).end();
    }
  };
  const appServer = await listen(app, "127.0.0.1");
  servers.push(appServer);
  const appPort = portOf(appServer);
  // `localhost` may resolve to ::1; serve it there too when this machine has IPv6 loopback.
  try {
    servers.push(await listen(app, "::1", appPort));
  } catch {
    // No ::1 here: Chromium falls back to 127.0.0.1.
  }
  const appOrigin = `http://localhost:${appPort}`;

  const stray: string[] = [];
  const { html, headers } = sandboxDocument({ frameAncestors: [appOrigin] });
  const sandboxServer = await listen((request, response) => {
    if (request.url === "/") return void response.writeHead(200, headers).end(html);
    stray.push(request.url ?? "");
    response.writeHead(404).end();
  }, "127.0.0.1");
  servers.push(sandboxServer);

  let connections = 0;
  const listenerLog: string[] = [];
  const listener = await listen((request, response) => {
    listenerLog.push(request.url ?? "");
    const type = request.url?.endsWith(".js") ? "text/javascript" : request.url?.includes("eventsource") ? "text/event-stream" : "text/plain";
    response.writeHead(200, { "Access-Control-Allow-Origin": "*", "Content-Type": type }).end(type === "text/plain" ? "reached" : "");
  }, "127.0.0.1");
  listener.on("connection", () => {
    connections += 1;
  });
  listener.on("upgrade", (request, socket) => {
    listenerLog.push(request.url ?? "");
    socket.destroy();
  });
  servers.push(listener);

  let datagrams = 0;
  const udp = createSocket("udp4");
  udp.on("message", () => {
    datagrams += 1;
  });
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", () => resolve()));

  return {
    appOrigin,
    sandboxOrigin: `http://127.0.0.1:${portOf(sandboxServer)}`,
    listenerUrl: `http://127.0.0.1:${portOf(listener)}/`,
    listenerConnections: () => connections,
    listenerRequests: () => [...listenerLog],
    udpPort: udp.address().port,
    udpPackets: () => datagrams,
    appRequests: () => [...appLog],
    sandboxStrayRequests: () => [...stray],
    close: async () => {
      udp.close();
      await Promise.all(
        servers.map((server) => {
          server.closeAllConnections();
          return new Promise<void>((resolve) => server.close(() => resolve()));
        }),
      );
    },
  };
}
