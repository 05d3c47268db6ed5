// The memory budget's streams (docs/architecture.md, "The sandbox", item 5). A byte stream with
// `autoAllocateChunkSize` has the engine allocate a buffer of that size for every read a default
// reader makes while no bytes are queued, and hands it to work code as `byobRequest.view`: an
// allocation no stand-in makes, repeated for every pending read (many reads, many buffers), so
// the budget could not count it. The sandbox refuses that option; a byte stream without it, where
// work code enqueues or fills buffers it made itself (counted), runs as before.

import { apply, construct } from "../intrinsics.ts";
import type { Accounting } from "./accounting.ts";
import { type Constructor, standIn } from "./wrap.ts";

const REFUSED =
  "autoAllocateChunkSize is not offered in the sandbox (its buffers are allocated where the task's memory budget cannot count them): enqueue chunks, or read with a BYOB reader into a buffer of your own";

export function installStreams(accounting: Accounting): void {
  const Original = globalThis.ReadableStream;
  if (!Original) return;
  const Wrapped = function (this: unknown, source?: unknown, strategy?: unknown): object {
    if (new.target === undefined) throw new TypeError("Constructor ReadableStream requires 'new'");
    let checked = source;
    if (typeof source === "object" && source !== null) {
      // Read once, as the engine reads its options: a getter must not answer the engine differently than it answered here.
      const given = source as Record<string, unknown>;
      const autoAllocate = given.autoAllocateChunkSize;
      if (autoAllocate !== undefined) throw new TypeError(REFUSED);
      const { cancel, pull, start, type } = given;
      const method = (fn: unknown) => (typeof fn === "function" ? (...args: unknown[]) => apply(fn as (...a: unknown[]) => unknown, source, args) : fn);
      checked = { cancel: method(cancel), pull: method(pull), start: method(start), type };
    }
    return construct(Original, [checked, strategy], (new.target as unknown) === Wrapped ? Original : new.target) as object;
  } as unknown as Constructor;
  accounting.replaceGlobal("ReadableStream", standIn(Original as unknown as Constructor, Wrapped));
}
