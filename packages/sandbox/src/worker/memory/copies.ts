// The memory budget's copies made by the platform (docs/architecture.md, "The sandbox", item
// 5): structuredClone, TextEncoder.encode, and what crypto.subtle returns.

import { apply, promiseThen } from "../intrinsics.ts";
import type { Accounting } from "./accounting.ts";
import { type AnyFunction, bufferOfView, isAnyBuffer, isView, uncurry, wrapMethod } from "./wrap.ts";

export function installPlatformCopies(accounting: Accounting): void {
  const clone = globalThis.structuredClone;
  accounting.replaceGlobal("structuredClone", function structuredClone(value: unknown, options?: StructuredSerializeOptions) {
    const exceeded = accounting.exceeded();
    if (exceeded !== null) throw new RangeError(exceeded);
    const copy = clone(value, options);
    const buffers = buffersIn(copy);
    for (let i = 0; i < buffers.length; i++) accounting.countBuffer(buffers[i]!);
    return copy;
  });

  const encode = uncurry(TextEncoder.prototype.encode as AnyFunction) as (encoder: unknown, input: unknown) => Uint8Array;
  wrapMethod(
    TextEncoder.prototype as unknown as Record<string, unknown>,
    "encode",
    () =>
      function (this: TextEncoder, input?: unknown) {
        const bytes = encode(this, input);
        accounting.countView(bytes);
        return bytes;
      },
  );

  const subtle = crypto.subtle as unknown as Record<string, unknown>;
  const subtleProto = Object.getPrototypeOf(subtle) as Record<string, unknown>;
  for (const method of ["encrypt", "decrypt", "sign", "verify", "digest", "generateKey", "deriveKey", "deriveBits", "importKey", "exportKey", "wrapKey", "unwrapKey"]) {
    if (typeof subtleProto[method] !== "function") continue;
    wrapMethod(
      subtleProto,
      method,
      (original) =>
        function (this: SubtleCrypto, ...args: unknown[]) {
          const result = accounting.pending.track(apply(original as AnyFunction, this, args as never[]) as Promise<unknown>);
          return apply(promiseThen, result, [
            (value: unknown) => {
              if (isAnyBuffer(value)) accounting.countBuffer(value as ArrayBuffer);
              return value;
            },
          ]);
        },
    );
  }
}

const objectKeys = Object.keys;
const mapForEach = Map.prototype.forEach;
const setForEach = Set.prototype.forEach;
const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, "size")!.get!;
const setSize = Object.getOwnPropertyDescriptor(Set.prototype, "size")!.get!;
const weakSetHas = WeakSet.prototype.has;
const weakSetAdd = WeakSet.prototype.add;

/** True only for a real instance, by its getter's brand check. */
function branded(get: () => unknown, value: object): boolean {
  try {
    apply(get, value, []);
    return true;
  } catch {
    return false;
  }
}

/** Every ArrayBuffer reachable in a structured clone's copy (a fresh graph of plain data, so walking it runs no work code). */
function buffersIn(root: unknown): ArrayBuffer[] {
  const found: ArrayBuffer[] = [];
  // A copy with no objects in it (a string, a number): nothing to walk.
  if (typeof root !== "object" || root === null) return found;
  const seen = new WeakSet<object>();
  const stack: unknown[] = [root];
  const push = (value: unknown): void => void (stack[stack.length] = value);
  while (stack.length > 0) {
    const value = stack[stack.length - 1];
    stack.length -= 1;
    if (typeof value !== "object" || value === null || apply(weakSetHas, seen, [value])) continue;
    apply(weakSetAdd, seen, [value]);
    if (isAnyBuffer(value)) found[found.length] = value as ArrayBuffer;
    else if (isView(value)) push(bufferOfView(value as ArrayBufferView));
    else if (branded(mapSize, value))
      apply(mapForEach, value, [
        (item: unknown, key: unknown) => {
          push(key);
          push(item);
        },
      ]);
    else if (branded(setSize, value)) apply(setForEach, value, [(item: unknown) => push(item)]);
    else {
      const keys = objectKeys(value);
      for (let i = 0; i < keys.length; i++) push((value as Record<string, unknown>)[keys[i]!]);
    }
  }
  return found;
}
