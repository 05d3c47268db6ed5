// The API reference page (/api/docs): Scalar's standalone script over our OpenAPI document.
// The page is written here, not by @scalar/hono-api-reference, so that @scalar is a build-time
// dependency only (its ~260 MB, vue included, served one 4 MB file): the Node build copies that
// file into dist/ (scripts/bundle.ts) and the Node entry serves it from there.

/**
 * Where the page loads Scalar's script, from this origin on both runtimes: the Node entry
 * serves it from dist/docs, Workers from the static assets wrangler.toml names
 * (dist/workers-assets), both copied there by the build (scripts/bundle.ts).
 */
export const docsScriptUrl = "/api/docs/scalar.js";

/**
 * What the page shows: this API and nothing of the vendor's. No telemetry, no fonts from
 * another host, no developer toolbar, AI agent or MCP panel, no "open in the vendor's
 * client", and the "Powered by" link hidden. Requests made from the page go to this origin.
 */
const configuration = {
  url: "/api/openapi.json",
  telemetry: false,
  withDefaultFonts: false,
  showDeveloperTools: "never",
  agent: { disabled: true },
  mcp: { disabled: true },
  hideClientButton: true,
  documentDownloadType: "json",
  // Some thirty operations: all of them open, so the page reads (and finds with Ctrl-F) as one reference.
  defaultOpenAllTags: true,
  operationTitleSource: "summary",
  customCss: `a[href^="https://www.scalar.com"], a[href^="https://scalar.com"] { display: none !important; }`,
};

const escapeHtml = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** The page, its inline scripts and style allowed by `nonce` (lib/security-headers.ts, docsPageCsp). */
export function apiReferencePage({ title, nonce, scriptUrl }: { title: string; nonce: string; scriptUrl: string }): string {
  const n = escapeHtml(nonce);
  // JSON in a script element: "<" escaped so that no value can close the element.
  const config = JSON.stringify(configuration).replaceAll("<", "\\u003c");
  return `<!doctype html>
<html lang="en">
  <head>
    <title>${escapeHtml(title)}</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta property="csp-nonce" content="${n}" />
  </head>
  <body>
    <div id="app"></div>
    <script src="${escapeHtml(scriptUrl)}" nonce="${n}"></script>
    <script nonce="${n}">Scalar.createApiReference("#app", ${config})</script>
  </body>
</html>`;
}

/** Resources, in the order the reference lists them, and the paths each holds. */
const resourceTags: { name: string; description: string; match: (path: string) => boolean }[] = [
  { name: "Accounts", description: "Sign up, sign in, and the account's display name.", match: (p) => p.startsWith("/api/auth") },
  { name: "API keys", description: "Long-lived keys for scripts and the command line.", match: (p) => p.startsWith("/api/keys") },
  {
    name: "Tasks",
    description: "Creating tasks, their lifecycle, inputs, chunks, results and history.",
    match: (p) => p.startsWith("/api/tasks") && !p.endsWith("/summary") && !p.endsWith("/code") && !p.endsWith("/wasm") && !p.endsWith("/events"),
  },
  { name: "Live updates", description: "Server-Sent Events, and the tickets that open them from a browser.", match: (p) => p.endsWith("/events") || p.startsWith("/api/tickets") },
  {
    name: "Volunteers",
    description: "Volunteer identities, leasing chunks and posting results.",
    match: (p) => p.startsWith("/api/volunteers") || p.startsWith("/api/work") || /\/api\/tasks\/\{id\}\/(summary|code|wasm)$/.test(p),
  },
  { name: "Statistics", description: "Site-wide figures and the leaderboard.", match: (p) => p.startsWith("/api/stats") || p.startsWith("/api/leaderboard") },
  { name: "Administration", description: "Accounts as an admin sees them.", match: (p) => p.startsWith("/api/admin") },
  { name: "Server", description: "Health and the configuration a page needs.", match: () => true },
];

// The parts of an OpenAPI document this reads and writes (the generator's own types are stricter).
type OpenApiDocument = { paths?: object; tags?: { name: string; description?: string }[] };

/**
 * Groups the operations by resource for the reference's sidebar: one tag each, from its
 * path, replacing whatever a route set itself, so that every route, new ones included, lands
 * in a group without each route file having to say so.
 */
export function tagOperations<T extends OpenApiDocument>(document: T): T {
  const used = new Set<string>();
  for (const [path, item] of Object.entries(document.paths ?? {}) as [string, Record<string, unknown> | undefined][]) {
    const tag = resourceTags.find((resource) => resource.match(path))!.name;
    for (const [method, operation] of Object.entries(item ?? {})) {
      if (!["get", "put", "post", "patch", "delete"].includes(method) || typeof operation !== "object" || operation === null) continue;
      (operation as { tags?: string[] }).tags = [tag];
      used.add(tag);
    }
  }
  document.tags = resourceTags.filter((resource) => used.has(resource.name)).map(({ name, description }) => ({ name, description }));
  return document;
}
