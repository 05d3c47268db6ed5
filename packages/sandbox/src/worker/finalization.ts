// Work code's FinalizationRegistry (docs/architecture.md, "The sandbox", item 4: nothing runs
// between chunks). The engine runs cleanup callbacks as tasks of their own whenever it likes:
// with the browser's registry, a callback for an object a chunk registered ran between chunks
// or during the next chunk of the task, on that chunk's time. This one runs a callback only
// while the chunk that made the registration is running; later ones are dropped (an object
// that outlives its chunk is freed with the worker, or by an explicit `free()`/`dispose()`).

import { apply, registerFinalizer } from "./intrinsics.ts";

/** Which chunk is running: `generation` changes at each chunk's start; `running` is false between chunks. */
export interface ChunkClock {
  generation: number;
  running: boolean;
}

const unregisterFinalizer = FinalizationRegistry.prototype.unregister;
const Registry = FinalizationRegistry;

export function chunkFinalizationRegistry(clock: ChunkClock): typeof FinalizationRegistry {
  class ChunkFinalizationRegistry<T> {
    readonly #registry: FinalizationRegistry<{ held: T; generation: number }>;
    constructor(cleanup: (held: T) => void) {
      if (typeof cleanup !== "function") throw new TypeError("FinalizationRegistry: cleanup must be callable");
      this.#registry = new Registry((entry) => {
        if (clock.running && entry.generation === clock.generation) apply(cleanup, undefined, [entry.held]);
      });
    }
    register(target: WeakKey, held: T, unregisterToken?: WeakKey): void {
      if (held === target) throw new TypeError("FinalizationRegistry.prototype.register: target and holdings must not be same");
      apply(registerFinalizer, this.#registry, [target, { held, generation: clock.running ? clock.generation : -1 }, unregisterToken]);
    }
    unregister(unregisterToken: WeakKey): boolean {
      return apply(unregisterFinalizer, this.#registry, [unregisterToken]) as boolean;
    }
    get [Symbol.toStringTag](): string {
      return "FinalizationRegistry";
    }
  }
  Object.defineProperty(ChunkFinalizationRegistry, "name", { value: "FinalizationRegistry" });
  return ChunkFinalizationRegistry as unknown as typeof FinalizationRegistry;
}
