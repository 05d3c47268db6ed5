// The sandbox origin's only document (docs/architecture.md, "The sandbox"). Imported by
// the API on Node and on Cloudflare Workers, so it uses nothing from node:.
import { bootstrapScript, bootstrapSha256 } from "../dist/bootstrap.js";

export interface SandboxDocument {
  html: string;
  headers: Record<string, string>;
}

const deniedFeatures = ["camera", "microphone", "geolocation", "usb", "serial", "hid", "bluetooth", "clipboard-read", "clipboard-write", "display-capture"];

/**
 * The bootstrap document and the headers to serve it with on the sandbox origin.
 * `frameAncestors` are the app origins allowed to embed it.
 *
 * @example
 * const { html, headers } = sandboxDocument({ frameAncestors: ["http://localhost:8787"] });
 * return new Response(html, { headers });
 */
export function sandboxDocument({ frameAncestors }: { frameAncestors: string[] }): SandboxDocument {
  if (frameAncestors.length === 0) throw new Error("frameAncestors needs at least one origin");
  for (const origin of frameAncestors) {
    // Each lands verbatim in the CSP header, so anything but an origin could add a directive.
    if (!/^https?:\/\/[a-z0-9.\-[\]:]+$/i.test(origin)) throw new Error(`frameAncestors: not an origin: ${JSON.stringify(origin)}`);
  }
  const csp = [
    "default-src 'none'",
    // No 'self': with it, import('/anything?secret') reached the server.
    `script-src 'sha256-${bootstrapSha256}' blob: 'unsafe-eval' 'wasm-unsafe-eval'`,
    "worker-src blob:",
    "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors.join(" ")}`,
  ].join("; ");
  return {
    html: `<!doctype html><html><head><meta charset="utf-8"><title>CrowdCompute sandbox</title><script>${bootstrapScript}</script></head><body></body></html>`,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": csp,
      "Permissions-Policy": deniedFeatures.map((feature) => `${feature}=()`).join(", "),
      "Referrer-Policy": "no-referrer",
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "no-store",
    },
  };
}

/**
 * The sandbox origin for a page served locally: the other loopback name, so that the
 * frame is another site and Chromium gives it its own process.
 */
export function sandboxOriginFor(pageUrl: URL, sandboxPort: number): string {
  const host = pageUrl.hostname === "localhost" ? "127.0.0.1" : "localhost";
  return `http://${host}:${sandboxPort}`;
}
