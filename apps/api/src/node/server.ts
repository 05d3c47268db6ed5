import { createHmac, createSecretKey, type KeyObject, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Db, notifyWorkReady, sweepExpiredLeases } from "@crowdcompute/db";
import { sandboxDocument } from "@crowdcompute/sandbox/document";
import { getConnInfo } from "@hono/node-server/conninfo";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono } from "hono";
import { createApp } from "../create-app.ts";
import type { AppEnv } from "../env.ts";
import { docsScriptUrl } from "../lib/api-docs.ts";
import type { AppContext } from "../lib/context.ts";
import { type ChangeFeed, listeningFeed, pollingFeed } from "../lib/live.ts";
import { appOrigins } from "../lib/origins.ts";
import { securityHeaders } from "../lib/security-headers.ts";
import { listeningWorkWaiters, type WorkWaiters } from "../lib/work-waiters.ts";
import { endableEventStreams } from "./event-streams.ts";
import { listenOnLoopbacks } from "./listen.ts";
import { createNodeMetrics } from "./metrics.ts";
import { sendingHeldAnswers } from "./send-held.ts";

export const defaultWebDist = fileURLToPath(new URL("../../../web/dist", import.meta.url));
/** Scalar's script for /api/docs, copied and compressed by the Node build (scripts/bundle.ts). */
const docsDist = fileURLToPath(new URL("../../dist/docs", import.meta.url));

export interface RunningServer {
  url: string;
  port: number;
  sandboxPort: number;
  /**
   * Shuts down gracefully: stops accepting connections, ends event streams, lets the other
   * requests in flight finish for up to `env.shutdownTimeoutMs`, then cuts what is left.
   */
  close(): Promise<void>;
}

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

/**
 * Serves the API and the built web app on `env.port`, and the sandbox document on
 * `env.sandboxPort`, from one process, so `npm start` needs nothing else. Port 0 picks free
 * ports (tests).
 */
export async function startServer({ db, env, webDist = defaultWebDist }: { db: Db; env: AppEnv; webDist?: string }): Promise<RunningServer> {
  // Each side must know the other's port, so listen first and build the apps after.
  const starting: Fetch = () => new Response("starting", { status: 503 });
  let siteFetch = starting;
  let sandboxFetch = starting;
  // The node adaptor passes its bindings (the socket) as `env`: conninfo needs them.
  const site = await listenOnLoopbacks((request, bindings) => siteFetch(request, bindings), env.port);
  const sandbox = await listenOnLoopbacks((request) => sandboxFetch(request), env.port === 0 ? 0 : env.sandboxPort);
  const actual: AppEnv = { ...env, port: site.port, sandboxPort: sandbox.port };
  // Live streams wake on NOTIFY from any API process sharing the database.
  const changes = await listeningFeed(db).catch((error: unknown) => {
    console.warn(`LISTEN unavailable, live streams poll instead: ${(error as Error).message}`);
    return pollingFeed();
  });
  // Lease requests that wait for work wake on NOTIFY too; while any wait, expired leases are
  // swept every second (waiters send no lease requests to sweep them).
  const waiters = await listeningWorkWaiters(db, {
    ...env.leaseWaiting,
    tick: () =>
      void sweepExpiredLeases(db, randomUUID()).then(
        (n) => (n > 0 ? notifyWorkReady(db, ["*"]) : undefined),
        () => {},
      ),
  });
  const streams = endableEventStreams(siteApp(db, actual, webDist, changes, waiters).fetch);
  siteFetch = sendingHeldAnswers(streams.fetch);
  sandboxFetch = sandboxApp(actual).fetch;
  return {
    url: env.publicUrl ?? `http://localhost:${site.port}`,
    port: site.port,
    sandboxPort: sandbox.port,
    close: async () => {
      const closed = Promise.all([site.close(env.shutdownTimeoutMs), sandbox.close(env.shutdownTimeoutMs)]);
      streams.endAll();
      // Waiting lease requests are answered at once (no work), so they do not hold the drain.
      await waiters?.close();
      const cut = (await closed).reduce((sum, n) => sum + n, 0);
      if (cut > 0) console.warn(`shutdown: cut ${cut} request${cut === 1 ? "" : "s"} still running after ${env.shutdownTimeoutMs} ms`);
      await changes.close().catch(() => {});
    },
  };
}

// The key object is made once per key: made per call from the bytes, it cost as much as the MAC.
const keyObjects = new WeakMap<Uint8Array, KeyObject>();
function nodeHmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  let keyObject = keyObjects.get(key);
  if (!keyObject) keyObjects.set(key, (keyObject = createSecretKey(key)));
  return createHmac("sha256", keyObject).update(data).digest();
}

/** The peer's address on Node: the socket's, never a client-sent header. */
const clientIp = (c: AppContext) => {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null; // called without a socket (app.request)
  }
};

/**
 * Static files, compressed at build time (tooling/precompress.ts), streamed from disk. Vite
 * names the files under /assets/ by their content's hash, so they never change and are kept a
 * year; anything else (the page, the service worker, icons) is asked for again each time.
 */
const staticFiles = (root: string, cacheControl: (path: string) => string, rewrite?: string) =>
  serveStatic({
    root,
    precompressed: true,
    ...(rewrite ? { rewriteRequestPath: () => rewrite } : {}),
    onFound: (path, c) => c.header("cache-control", cacheControl(path)),
  });
const immutable = "public, max-age=31536000, immutable";
// The path served may be the compressed file's, ending .br or .gz.
const hashedAsset = /[\\/]assets[\\/][^\\/]+-[A-Za-z0-9_-]{8}\.[a-z0-9]+(\.br|\.gz)?$/;

function siteApp(db: Db, env: AppEnv, webDist: string, changes: ChangeFeed, waiters: WorkWaiters | null) {
  const site = new Hono();
  // The web app's pages and files too, not only the API's answers.
  site.use("*", securityHeaders(env));
  // The API reference page's script, from this process, so the page works offline.
  if (existsSync(join(docsDist, "scalar.js")))
    site.get(
      docsScriptUrl,
      staticFiles(docsDist, () => "public, max-age=86400", "/scalar.js"),
    );
  else site.get(docsScriptUrl, (c) => c.text(`The API reference script is not built: run \`npm run build\` (looked in ${docsDist}).`, 503));
  // Metrics cost a little on every lease: kept only where an operator can read them.
  const metrics = env.metricsToken ? createNodeMetrics(db, () => ({ size: waiters?.size ?? 0, arriving: waiters?.arriving ?? 0 })) : undefined;
  site.route("/", createApp({ db, env, changes, clientIp, docsScriptUrl, hmac: nodeHmac, waiters, ...(metrics ? { metrics } : {}) }));
  if (existsSync(join(webDist, "index.html"))) {
    const indexHtml = readFileSync(join(webDist, "index.html"), "utf8");
    site.use(
      "/*",
      staticFiles(webDist, (path) => (hashedAsset.test(path) ? immutable : "no-cache")),
    );
    // Client-side routes all load the same page.
    site.get("*", (c) => c.html(indexHtml, 200, { "cache-control": "no-cache" }));
  } else {
    site.get("*", (c) => c.text(`The web app is not built: run \`npm run build\` (looked in ${webDist}).`, 503));
  }
  return site;
}

/** The sandbox origin serves its bootstrap document and nothing else. */
function sandboxApp(env: AppEnv) {
  const document = sandboxDocument({ frameAncestors: appOrigins(env) });
  const sandbox = new Hono();
  sandbox.get("/", (c) => c.body(document.html, 200, document.headers));
  sandbox.all("*", (c) => c.text("not found", 404));
  return sandbox;
}
