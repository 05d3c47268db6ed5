// Hand-written WebAssembly for the tests: WAT text compiled with wabt (no toolchain needed).
import { createHash } from "node:crypto";
import wabt from "wabt";

/** The binary of a module written in the WebAssembly text format. */
export async function compileWat(text: string): Promise<Uint8Array> {
  const module = (await wabt()).parseWat("test.wat", text);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** Lowercase hex sha256. */
export const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/**
 * `fib(n)` (iterative, i64), and a counter in linear memory that persists across calls:
 * `bump()` returns 1, 2, 3, … for one instance.
 */
export const fibWat = `(module
  (memory (export "memory") 1)
  (func (export "fib") (param $n i32) (result i64)
    (local $a i64) (local $b i64) (local $t i64)
    (local.set $b (i64.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $t (i64.add (local.get $a) (local.get $b)))
        (local.set $a (local.get $b))
        (local.set $b (local.get $t))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $a))
  (func (export "bump") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.load (i32.const 0))))`;

/** fib(n) computed here, for checking. */
export function fib(n: number): bigint {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, (a + b) & 0xffffffffffffffffn];
  return BigInt.asIntN(64, a);
}
