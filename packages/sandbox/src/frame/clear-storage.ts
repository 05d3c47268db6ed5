/**
 * Empties the sandbox origin's storage on a task switch. Work code cannot reach any of
 * it (workers lose these APIs before it loads), so this is the second layer, not the first.
 */
export async function clearOriginStorage(): Promise<void> {
  await Promise.allSettled([
    Promise.resolve().then(() => localStorage.clear()),
    Promise.resolve().then(() => sessionStorage.clear()),
    clearIndexedDb(),
    clearCaches(),
  ]);
}

async function clearIndexedDb(): Promise<void> {
  const databases = await indexedDB.databases();
  await Promise.all(
    databases.map(
      ({ name }) =>
        new Promise<void>((resolve) => {
          if (!name) return resolve();
          const request = indexedDB.deleteDatabase(name);
          // "blocked" means a connection is still open; the delete completes once it closes.
          request.onsuccess = request.onerror = request.onblocked = () => resolve();
        }),
    ),
  );
}

async function clearCaches(): Promise<void> {
  const names = await caches.keys();
  await Promise.all(names.map((name) => caches.delete(name)));
}
