// Security headers on every answer of the app's origin (the sandbox origin sends its own,
// from @crowdcompute/sandbox/document). The session token lives in the page's localStorage,
// so what may run in the page, and who may frame it, is what guards it.
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";
import { sandboxOriginForRequest } from "./origins.ts";

type OriginEnv = Pick<AppEnv, "sandboxOrigin" | "sandboxPort" | "port" | "publicUrl">;

/**
 * The web app's pages (and its static files: a service worker runs under its script's CSP).
 * Scripts only from this origin, none inline, no eval. WebAssembly may be compiled
 * ('wasm-unsafe-eval', which lets no text run as script): the task form compiles a creator's
 * .wat with wabt, itself WebAssembly. Styles allow 'unsafe-inline': the code
 * editor (CodeMirror) writes its styles into a <style> element at run time, which a nonce
 * cannot cover on a page the service worker serves from its cache; React's style props go
 * through the CSSOM and need nothing. The sandbox origin is the only frame; nothing may frame
 * the app.
 */
function appPageCsp(sandboxOrigin: string): string {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    `frame-src ${sandboxOrigin}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** API answers are data, never documents: if one is opened as a page, it may load and run nothing. */
const apiCsp = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The API reference page (/api/docs) only: Scalar initializes from an inline script, allowed by
 * this response's own nonce (as is its bundle's tag, from this origin on Node or its CDN on
 * Workers); its fonts are turned off so that it loads nothing from elsewhere.
 */
export function docsPageCsp(nonce: string): string {
  return [
    "default-src 'self'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** A fresh nonce for one response: 16 random bytes, base64. */
export function cspNonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

const isApiPath = (path: string) => path === "/api" || path.startsWith("/api/") || path === "/metrics";

/**
 * Adds the headers to every answer, errors included, leaving any a route set itself (the
 * reference page's CSP with its nonce). Safe to apply twice (the Node entry wraps the app).
 */
export function securityHeaders(env: OriginEnv): MiddlewareHandler {
  return async (c, next) => {
    await next();
    let headers = c.res.headers;
    try {
      headers.set("x-content-type-options", "nosniff");
    } catch {
      c.res = new Response(c.res.body, c.res); // a response with immutable headers (e.g. one fetched)
      headers = c.res.headers;
      headers.set("x-content-type-options", "nosniff");
    }
    if (!headers.has("referrer-policy")) headers.set("referrer-policy", "no-referrer");
    if (!headers.has("x-frame-options")) headers.set("x-frame-options", "DENY");
    if (!headers.has("content-security-policy")) {
      headers.set("content-security-policy", isApiPath(c.req.path) ? apiCsp : appPageCsp(sandboxOriginForRequest(env, new URL(c.req.url))));
    }
    if (!isApiPath(c.req.path) && !headers.has("cross-origin-opener-policy")) headers.set("cross-origin-opener-policy", "same-origin");
  };
}
