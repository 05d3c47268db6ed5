/**
 * Empties everything the sandbox origin can hold, at frame start and on every task switch
 * (docs/architecture.md, "The sandbox"). Work code gets no storage route at all (its scope is
 * an allow-list), so this is the second layer: in a profile that allows third-party storage,
 * what a task stored by a route the first layer missed outlived the task and a browser restart.
 * Each route is given 2 s, so an API that hangs cannot stall the next task.
 */
export async function clearOriginStorage(): Promise<void> {
  await Promise.allSettled(
    [
      async () => localStorage.clear(),
      async () => sessionStorage.clear(),
      () => clearIndexedDb(indexedDB),
      () => clearCaches(caches),
      () => clearStorageBuckets(),
      async () => clearDirectory(await navigator.storage.getDirectory()),
      () => clearPrefixedFileSystems(),
      () => clearCookies(),
      () => clearServiceWorkers(),
    ].map((clear) => withinTime(clear)),
  );
}

const ROUTE_TIME_MS = 2000;

function withinTime(clear: () => Promise<unknown>): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    Promise.resolve().then(clear),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ROUTE_TIME_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function clearIndexedDb(factory: IDBFactory): Promise<void> {
  const databases = await factory.databases();
  await Promise.all(
    databases.map(
      ({ name }) =>
        new Promise<void>((resolve) => {
          if (!name) return resolve();
          const request = factory.deleteDatabase(name);
          // "blocked" means a connection is still open; the delete completes once it closes.
          request.onsuccess = request.onerror = request.onblocked = () => resolve();
        }),
    ),
  );
}

async function clearCaches(storage: CacheStorage): Promise<void> {
  const names = await storage.keys();
  await Promise.all(names.map((name) => storage.delete(name)));
}

interface StorageBucketManager {
  keys(): Promise<string[]>;
  delete(name: string): Promise<void>;
}

/** Buckets hold their own IndexedDB, caches and origin file system; deleting a bucket drops them all. */
async function clearStorageBuckets(): Promise<void> {
  const buckets = (navigator as Navigator & { storageBuckets?: StorageBucketManager }).storageBuckets;
  if (!buckets) return;
  const names = await buckets.keys();
  await Promise.all(names.map((name) => buckets.delete(name)));
}

async function clearDirectory(directory: FileSystemDirectoryHandle): Promise<void> {
  const names: string[] = [];
  for await (const name of (directory as FileSystemDirectoryHandle & { keys(): AsyncIterable<string> }).keys()) names.push(name);
  await Promise.all(names.map((name) => directory.removeEntry(name, { recursive: true })));
}

interface PrefixedEntry {
  isDirectory: boolean;
  removeRecursively(success: () => void, failure: (error: unknown) => void): void;
  remove(success: () => void, failure: (error: unknown) => void): void;
}

/** The prefixed file system (`webkitRequestFileSystem`), temporary and persistent, emptied entry by entry. */
async function clearPrefixedFileSystems(): Promise<void> {
  type RequestFs = (
    type: number,
    size: number,
    success: (fs: { root: { createReader(): { readEntries(success: (entries: PrefixedEntry[]) => void, failure: (error: unknown) => void): void } } }) => void,
    failure: (error: unknown) => void,
  ) => void;
  const request = (globalThis as { webkitRequestFileSystem?: RequestFs }).webkitRequestFileSystem;
  if (!request) return;
  for (const type of [0 /* TEMPORARY */, 1 /* PERSISTENT */]) {
    const fs = await new Promise<Parameters<Parameters<RequestFs>[2]>[0] | null>((resolve) => request.call(globalThis, type, 0, resolve, () => resolve(null)));
    if (!fs) continue;
    const reader = fs.root.createReader();
    // readEntries returns a batch at a time, and an empty one at the end.
    for (;;) {
      const entries = await new Promise<PrefixedEntry[]>((resolve) => reader.readEntries(resolve, () => resolve([])));
      if (entries.length === 0) break;
      await Promise.all(entries.map((entry) => new Promise<void>((resolve) => (entry.isDirectory ? entry.removeRecursively(resolve, () => resolve()) : entry.remove(resolve, () => resolve())))));
    }
  }
}

async function clearCookies(): Promise<void> {
  for (const pair of document.cookie.split(";")) {
    const name = pair.split("=")[0]?.trim();
    // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is missing in some browsers the sandbox runs in
    if (name) document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`;
  }
}

async function clearServiceWorkers(): Promise<void> {
  const registrations = (await navigator.serviceWorker?.getRegistrations()) ?? [];
  await Promise.all(registrations.map((registration) => registration.unregister()));
}
