;; Collatz chain length, hand-written WebAssembly text. `crowdcompute submit --wasm collatz.wat`
;; compiles it (wabt) and uploads the binary; work code calls it through `ctx.wasm`.
(module
  ;; steps(n): how many 3n+1 / n/2 steps take n to 1. Runs in i64: the chain climbs far above n.
  (func (export "steps") (param $start i32) (result i32)
    (local $n i64)
    (local $count i32)
    (local.set $n (i64.extend_i32_u (local.get $start)))
    (block $done
      (loop $next
        (br_if $done (i64.le_u (local.get $n) (i64.const 1)))
        (if (i64.eqz (i64.and (local.get $n) (i64.const 1)))
          (then (local.set $n (i64.shr_u (local.get $n) (i64.const 1))))
          (else (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 3)) (i64.const 1)))))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (br $next)))
    (local.get $count)))
