// The app shell offline: pages fall back to the cached index.html, hashed assets are kept
// once fetched. Nothing under /api is ever cached or even intercepted: tasks, results and
// leases always come from the server.
const shell = "crowdcompute-shell-v1";
const assets = "crowdcompute-assets-v1";
const precache = ["/", "/manifest.webmanifest", "/icon.svg", "/icon-192.png", "/icon-512.png"];

// The shell, and the hashed scripts and styles its index.html names (lazily loaded page
// chunks are added the first time they are fetched).
async function install() {
  const cache = await caches.open(shell);
  await cache.addAll(precache);
  const index = await (await cache.match("/")).text();
  const named = [...new Set(Array.from(index.matchAll(/\/assets\/[^"'\s)]+/g), (m) => m[0]))];
  await (await caches.open(assets)).addAll(named);
  await self.skipWaiting();
}

self.addEventListener("install", (event) => event.waitUntil(install()));

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== shell && name !== assets).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/api" || url.pathname.startsWith("/api/") || url.pathname === "/metrics") return;

  if (request.mode === "navigate") {
    // Network first, so a deploy shows at once; the cached shell when offline.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            void caches.open(shell).then((cache) => cache.put("/", copy));
          }
          return response;
        })
        .catch(() => caches.match("/").then((cached) => cached ?? Response.error())),
    );
    return;
  }

  if (url.pathname.startsWith("/assets/")) {
    // Hashed file names never change content: cache first.
    event.respondWith(
      caches.match(request).then(
        (cached) =>
          cached ??
          fetch(request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              void caches.open(assets).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
    return;
  }

  if (precache.includes(url.pathname)) {
    event.respondWith(caches.match(request).then((cached) => cached ?? fetch(request)));
  }
});
