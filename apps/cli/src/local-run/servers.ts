// Two loopback origins for a dry run, as a deployment has them: the page on
// http://localhost:A and the sandbox document on http://127.0.0.1:B, a different site, so
// the frame gets its own process and the same CSP as on a real server.
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export interface LocalOrigins {
  pageUrl: string;
  sandboxOrigin: string;
  close(): Promise<void>;
}

/** The page prebuilt by the published package's build (apps/cli/scripts/build-dist.ts); undefined from source. */
declare const CROWDCOMPUTE_LOCAL_RUN_PAGE: string | undefined;

async function bundlePage(): Promise<string> {
  if (typeof CROWDCOMPUTE_LOCAL_RUN_PAGE === "string") return CROWDCOMPUTE_LOCAL_RUN_PAGE;
  const result = await build({
    entryPoints: [fileURLToPath(new URL("./page.ts", import.meta.url))],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "chrome120",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]?.text ?? "";
}

function listen(handler: RequestListener, host: string, port = 0): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

export async function startLocalOrigins(): Promise<LocalOrigins> {
  // Loaded here, not at the top: it needs the sandbox package's built bootstrap (`npm run build`).
  const { sandboxDocument } = await import("@crowdcompute/sandbox/document");
  const script = await bundlePage();
  const servers: Server[] = [];
  const page: RequestListener = (request, response) => {
    if (request.url === "/page.js") return void response.writeHead(200, { "content-type": "text/javascript" }).end(script);
    if (request.url === "/") {
      return void response.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>crowdcompute run</title><script src="/page.js"></script>');
    }
    response.writeHead(404).end();
  };
  try {
    const first = await listen(page, "127.0.0.1");
    servers.push(first);
    const port = (first.address() as AddressInfo).port;
    // `localhost` may resolve to ::1: serve there too when this machine has it.
    servers.push(await listen(page, "::1", port).catch(() => first));
    const pageOrigin = `http://localhost:${port}`;
    const { html, headers } = sandboxDocument({ frameAncestors: [pageOrigin] });
    const sandbox = await listen((request, response) => {
      if (request.url === "/") return void response.writeHead(200, headers).end(html);
      response.writeHead(404).end();
    }, "127.0.0.1");
    servers.push(sandbox);
    return {
      pageUrl: `${pageOrigin}/`,
      sandboxOrigin: `http://127.0.0.1:${(sandbox.address() as AddressInfo).port}`,
      close: () => closeAll(servers),
    };
  } catch (error) {
    await closeAll(servers);
    throw error;
  }
}

async function closeAll(servers: Server[]): Promise<void> {
  await Promise.all(
    [...new Set(servers)].map((server) => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    }),
  );
}
