// Work-code payloads that try to keep data where a later task (another creator's) could read
// it, by every storage route a dedicated worker has in Chromium, as one classic-script source:
// the very same text runs in the sandbox and, as the positive control, in a plain worker.
// `ccStorage.write({ marker, fillerMiB })` stores the marker (and incompressible filler, to
// weigh on the disk) by each route; `ccStorage.read()` reads each route back.

export const storageRoutes = [
  "indexedDB",
  "caches",
  "opfs",
  "opfs-sync-handle",
  "bucket-indexedDB",
  "bucket-caches",
  "bucket-opfs",
  "webkitFileSystem",
  "webkitFileSystemSync",
  "localStorage",
  "sessionStorage",
] as const;

export type StorageRoute = (typeof storageRoutes)[number];

export const storageSource = String.raw`
(() => {
  // Finds a property even where a lockdown shadowed it: on the object, else a getter up its prototypes.
  const reach = (object, name) => {
    try { const value = object[name]; if (value !== undefined && value !== null) return value; } catch {}
    for (let proto = object; proto; proto = Object.getPrototypeOf(proto)) {
      const found = Object.getOwnPropertyDescriptor(proto, name);
      if (found?.get) return found.get.call(object);
      if (found && typeof found.value === "function") return found.value;
    }
    throw new Error(name + " is gone");
  };
  const nav = () => reach(self, "navigator");
  const storage = () => reach(nav(), "storage");
  const bucket = () => reach(nav(), "storageBuckets").open("cc-bucket");
  const filler = (mib) => {
    const bytes = new Uint8Array(mib * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
    return bytes;
  };
  const idb = {
    write: (factory, marker, bytes) => new Promise((resolve, reject) => {
      const open = factory.open("cc-db", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("s");
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction("s", "readwrite");
        tx.objectStore("s").put(marker, "marker");
        if (bytes) tx.objectStore("s").put(bytes, "filler");
        tx.oncomplete = () => { db.close(); resolve("wrote"); };
        tx.onerror = () => reject(tx.error);
      };
    }),
    read: (factory) => new Promise((resolve, reject) => {
      const open = factory.open("cc-db", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("s");
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const get = db.transaction("s").objectStore("s").get("marker");
        get.onsuccess = () => { db.close(); resolve(get.result ?? null); };
        get.onerror = () => reject(get.error);
      };
    }),
  };
  const cache = {
    write: async (cacheStorage, marker, bytes) => {
      const opened = await cacheStorage.open("cc-cache");
      await opened.put("https://cc.invalid/marker", new Response(marker));
      if (bytes) await opened.put("https://cc.invalid/filler", new Response(bytes));
      return "wrote";
    },
    read: async (cacheStorage) => {
      const opened = await cacheStorage.open("cc-cache");
      const found = await opened.match("https://cc.invalid/marker");
      return found ? await found.text() : null;
    },
  };
  const opfs = {
    write: async (root, marker, bytes) => {
      for (const [name, data] of [["opfs-marker.txt", marker], ["opfs-filler.bin", bytes]]) {
        if (!data) continue;
        const writable = await (await root.getFileHandle(name, { create: true })).createWritable();
        await writable.write(data);
        await writable.close();
      }
      return "wrote";
    },
    read: async (root) => {
      try { return await (await (await root.getFileHandle("opfs-marker.txt")).getFile()).text(); } catch (err) { if (err.name === "NotFoundError") return null; throw err; }
    },
  };
  const encoder = new TextEncoder();
  const syncHandle = {
    write: async (root, marker, bytes) => {
      for (const [name, data] of [["sync-marker.txt", encoder.encode(marker)], ["sync-filler.bin", bytes]]) {
        if (!data) continue;
        const handle = await (await root.getFileHandle(name, { create: true })).createSyncAccessHandle();
        handle.truncate(0);
        handle.write(data, { at: 0 });
        handle.flush();
        handle.close();
      }
      return "wrote";
    },
    read: async (root) => {
      let handle;
      try { handle = await (await root.getFileHandle("sync-marker.txt")).createSyncAccessHandle(); } catch (err) { if (err.name === "NotFoundError") return null; throw err; }
      const bytes = new Uint8Array(handle.getSize());
      handle.read(bytes, { at: 0 });
      handle.close();
      return new TextDecoder().decode(bytes);
    },
  };
  const requestFs = (size) => new Promise((resolve, reject) => reach(self, "webkitRequestFileSystem").call(self, 0 /* TEMPORARY */, size, resolve, reject));
  const fsError = (err) => new Error("file system: " + (err?.name ?? err));
  const webkitFs = {
    write: async (marker, bytes) => {
      const fs = await requestFs(64 * 1024 * 1024);
      // The same origin file system as OPFS's in Chromium: names of its own, so neither overwrites the other.
      for (const [name, data] of [["wfs-marker.txt", marker], ["wfs-filler.bin", bytes]]) {
        if (!data) continue;
        await new Promise((resolve, reject) => fs.root.getFile(name, { create: true }, (entry) => entry.createWriter((writer) => {
          writer.onwriteend = resolve;
          writer.onerror = () => reject(fsError(writer.error));
          writer.write(new Blob([data]));
        }, (err) => reject(fsError(err))), (err) => reject(fsError(err))));
      }
      return "wrote";
    },
    read: async () => {
      const fs = await requestFs(0);
      return await new Promise((resolve, reject) => fs.root.getFile("wfs-marker.txt", {}, (entry) => entry.file((file) => file.text().then(resolve, reject), (err) => reject(fsError(err))), (err) => (err?.name === "NotFoundError" ? resolve(null) : reject(fsError(err)))));
    },
  };
  const webkitFsSync = {
    write: async (marker, bytes) => {
      const fs = reach(self, "webkitRequestFileSystemSync").call(self, 0, 64 * 1024 * 1024);
      for (const [name, data] of [["wfs-sync-marker.txt", marker], ["wfs-sync-filler.bin", bytes]]) {
        if (!data) continue;
        const writer = fs.root.getFile(name, { create: true }).createWriter();
        writer.truncate(0);
        writer.write(new Blob([data]));
      }
      return "wrote";
    },
    read: async () => {
      const fs = reach(self, "webkitRequestFileSystemSync").call(self, 0, 0);
      let entry;
      try { entry = fs.root.getFile("wfs-sync-marker.txt", {}); } catch (err) { if (err.name === "NotFoundError") return null; throw err; }
      return new FileReaderSync().readAsText(entry.file());
    },
  };
  const routes = {
    indexedDB: { write: (m, b) => idb.write(reach(self, "indexedDB"), m, b), read: () => idb.read(reach(self, "indexedDB")) },
    caches: { write: (m, b) => cache.write(reach(self, "caches"), m, b), read: () => cache.read(reach(self, "caches")) },
    opfs: { write: async (m, b) => opfs.write(await storage().getDirectory(), m, b), read: async () => opfs.read(await storage().getDirectory()) },
    "opfs-sync-handle": { write: async (m, b) => syncHandle.write(await storage().getDirectory(), m, b), read: async () => syncHandle.read(await storage().getDirectory()) },
    "bucket-indexedDB": { write: async (m, b) => idb.write((await bucket()).indexedDB, m, b), read: async () => idb.read((await bucket()).indexedDB) },
    "bucket-caches": { write: async (m, b) => cache.write((await bucket()).caches, m, b), read: async () => cache.read((await bucket()).caches) },
    "bucket-opfs": { write: async (m, b) => opfs.write(await (await bucket()).getDirectory(), m, b), read: async () => opfs.read(await (await bucket()).getDirectory()) },
    webkitFileSystem: { write: (m, b) => webkitFs.write(m, b), read: () => webkitFs.read() },
    webkitFileSystemSync: { write: (m, b) => webkitFsSync.write(m, b), read: () => webkitFsSync.read() },
    // Windows only (the frame's own storage): workers have neither.
    localStorage: { write: async (m) => (reach(self, "localStorage").setItem("cc-marker", m), "wrote"), read: async () => reach(self, "localStorage").getItem("cc-marker") },
    sessionStorage: { write: async (m) => (reach(self, "sessionStorage").setItem("cc-marker", m), "wrote"), read: async () => reach(self, "sessionStorage").getItem("cc-marker") },
  };
  const settle = async (go) => {
    try {
      const value = await Promise.race([go(), new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 3 s")), 3000))]);
      return value;
    } catch (err) {
      return "failed: " + String(err?.message ?? err);
    }
  };
  globalThis.ccStorage = {
    async write({ marker, fillerMiB }) {
      const out = {};
      for (const name of Object.keys(routes)) {
        let bytes;
        try { bytes = fillerMiB ? filler(fillerMiB) : undefined; } catch (err) { bytes = undefined; }
        out[name] = await settle(() => routes[name].write(marker + ":" + name, bytes));
      }
      return out;
    },
    async read() {
      const out = {};
      for (const name of Object.keys(routes)) out[name] = await settle(() => routes[name].read());
      return out;
    },
  };
})();
`;
