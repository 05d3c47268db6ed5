// Runs before any work code: removes what work code must not use (DESIGN §7.3).
// Storage would let two tasks (or two runs of one) read or poison each other; a nested
// Worker would get round the threads setting.

const removed: [target: "global" | "navigator", name: string][] = [
  ["global", "indexedDB"],
  ["global", "caches"],
  ["global", "BroadcastChannel"],
  ["global", "Worker"],
  ["global", "SharedWorker"],
  ["navigator", "storage"],
  ["navigator", "locks"],
];

/**
 * Makes each name `undefined`, non-configurable, on its object and every prototype above it.
 * Returns the names it could not remove (the worker then refuses to load work code).
 */
export function lockDownWorkerGlobal(): string[] {
  const targets = { global: globalThis as object, navigator: globalThis.navigator as object };
  const failed: string[] = [];
  for (const [target, name] of removed) {
    const object = targets[target];
    try {
      // Web IDL attributes live on prototypes (WorkerNavigator.prototype.storage), where a
      // shadowing own property alone would leave the getter reachable with .call().
      for (let proto = Object.getPrototypeOf(object); proto; proto = Object.getPrototypeOf(proto)) {
        if (Object.hasOwn(proto, name)) Reflect.deleteProperty(proto, name);
      }
      Object.defineProperty(object, name, { value: undefined, writable: false, enumerable: false, configurable: false });
    } catch {
      // Checked below.
    }
    const stillThere = (object as Record<string, unknown>)[name] !== undefined;
    if (stillThere) failed.push(name);
  }
  return failed;
}
