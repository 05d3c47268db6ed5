// A replicated task's results are compared by their RFC 8785 form: the fast path through
// JSON.stringify must write exactly what the canonicalize library writes, and refuse what it refuses.
import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/lib/canonical-json.ts";

let seed = 7;
const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
const keys = ["a", "b", "B", "10", "9", "é", "aa", "", "z\u00ff", "\ud83d\ude00"];

/** A JSON value as JSON.parse gives one: numbers of every kind, strings, nesting, keys in any order. */
function randomValue(depth: number): unknown {
  const pick = random();
  if (depth > 3 || pick < 0.3) {
    const numbers = [0, -0, 1, -1.5, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 123456789012345680000];
    return numbers[Math.floor(random() * numbers.length)];
  }
  if (pick < 0.45) return ["", "x", 'q"\\\n', "\u0007", "é😀", "\u2028"][Math.floor(random() * 6)];
  if (pick < 0.5) return [true, false, null][Math.floor(random() * 3)];
  if (pick < 0.75) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
  const chosen = keys.filter(() => random() < 0.4);
  if (random() < 0.5) chosen.sort();
  return JSON.parse(JSON.stringify(Object.fromEntries(chosen.map((key) => [key, randomValue(depth + 1)]))));
}

describe("canonicalJson", () => {
  it("writes what the canonicalize library writes, for 5,000 values with keys in and out of order", () => {
    let fast = 0;
    for (let i = 0; i < 5000; i++) {
      const value = randomValue(0);
      expect(canonicalJson(value)).toBe(canonicalize(value));
      if (canonicalJson(value) === JSON.stringify(value)) fast++;
    }
    // Some values JSON.stringify already writes canonically, and some it does not.
    expect(fast).toBeGreaterThan(100);
    expect(fast).toBeLessThan(5000);
  });

  it("refuses a lone surrogate as the library does, in a value or a key", () => {
    expect(() => canonicalJson(["\ud800"])).toThrow(/surrogate/);
    expect(() => canonicalJson({ "\udc00": 1 })).toThrow(/surrogate/);
  });
});
