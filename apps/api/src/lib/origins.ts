import { sandboxOriginFor } from "@crowdcompute/sandbox/document";
import type { AppEnv } from "../env.ts";

type OriginEnv = Pick<AppEnv, "sandboxOrigin" | "sandboxPort" | "port" | "publicUrl">;

/**
 * The sandbox origin for a page opened at `pageUrl`: `SANDBOX_ORIGIN` when set, else the
 * other loopback name on the sandbox port, so that the frame is another *site* and Chromium
 * gives it its own process (docs/architecture.md, "The sandbox").
 */
export function sandboxOriginForRequest(env: OriginEnv, pageUrl: URL): string {
  return env.sandboxOrigin ?? sandboxOriginFor(pageUrl, env.sandboxPort);
}

/** Every origin the sandbox may be served from; the API refuses requests from them. */
export function sandboxOrigins(env: OriginEnv): string[] {
  if (env.sandboxOrigin) return [new URL(env.sandboxOrigin).origin];
  return ["127.0.0.1", "localhost", "[::1]"].map((host) => `http://${host}:${env.sandboxPort}`);
}

/**
 * The app origins allowed to frame the sandbox (`frame-ancestors`). Not `[::1]`: Chromium
 * rejects IPv6 literals in that directive (a console error on every frame load).
 */
export function appOrigins(env: OriginEnv): string[] {
  if (env.publicUrl) return [new URL(env.publicUrl).origin];
  return ["localhost", "127.0.0.1"].map((host) => `http://${host}:${env.port}`);
}
