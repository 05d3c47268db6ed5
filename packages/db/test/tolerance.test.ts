import { describe, expect, it } from "vitest";
import { agreeWithin, sidesWithin } from "../src/dispatch/tolerance.ts";

// Copies as they reach the server: JSON text, parsed here as the vote path parses it.
const agree = (a: string, b: string, tolerance: { abs?: number; rel?: number }) => agreeWithin(JSON.parse(a), JSON.parse(b), tolerance);

describe("agreement within a tolerance", () => {
  it("compares numbers within abs, or within rel of the larger magnitude", () => {
    expect(agree("0.30000000000000004", "0.3", { rel: 1e-12 })).toBe(true);
    expect(agree("1.0", "1.1", { abs: 0.1 })).toBe(false); // 1.1 - 1 is 0.10000000000000009
    expect(agree("1.0", "1.1", { abs: 0.11 })).toBe(true);
    expect(agree("100", "110", { rel: 0.1 })).toBe(true); // 10 ≤ 0.1 × 110
    expect(agree("100", "112", { rel: 0.1 })).toBe(false); // 12 > 0.1 × 112
    expect(agree("-100", "-110", { rel: 0.1 })).toBe(true);
    expect(agree("-5", "5", { rel: 2 })).toBe(true);
    expect(agree("-5", "5", { rel: 1.5 })).toBe(false);
    // Either bound is enough.
    expect(agree("0", "0.001", { abs: 0.01, rel: 0 })).toBe(true);
    expect(agree("1000", "1001", { abs: 0.01, rel: 0.01 })).toBe(true);
    // Zero tolerance is exact.
    expect(agree("1", "1.0000000000000002", { abs: 0, rel: 0 })).toBe(false);
  });

  it("takes -0 as 0", () => {
    expect(JSON.parse("-0")).toBe(-0);
    expect(agree("-0", "0", { abs: 0 })).toBe(true);
    expect(agree("-0.0", "0", { rel: 0 })).toBe(true);
    expect(agree("[-0]", "[0]", { abs: 0 })).toBe(true);
  });

  it("has no NaN to compare: a worker's NaN arrives as null, and null disagrees with every number", () => {
    expect(JSON.stringify([Number.NaN])).toBe("[null]");
    expect(() => JSON.parse("NaN")).toThrow();
    expect(agree("null", "0", { abs: 1e300 })).toBe(false);
    expect(agree("0", "null", { abs: 1e300 })).toBe(false);
    expect(agree("[1, null]", "[1, 2]", { rel: 1 })).toBe(false);
    expect(agree("null", "null", { abs: 0 })).toBe(true);
    expect(agreeWithin(Number.NaN, Number.NaN, { abs: 1 })).toBe(false);
  });

  it("handles huge and tiny numbers: past the float range is Infinity, equal only to itself", () => {
    expect(agree("1e308", "1.0000000001e308", { rel: 1e-9 })).toBe(true);
    expect(agree("1e308", "1.0000000001e308", { abs: 1e290 })).toBe(false);
    expect(agree("1.7976931348623157e308", "-1.7976931348623157e308", { rel: 2 })).toBe(false); // the difference overflows
    expect(JSON.parse("1e400")).toBe(Number.POSITIVE_INFINITY);
    expect(agree("1e400", "1e401", { abs: 0 })).toBe(true);
    expect(agree("1e400", "1e308", { rel: 1 })).toBe(false);
    expect(agree("-1e400", "1e400", { rel: 10 })).toBe(false);
    expect(agree("5e-324", "0", { abs: 1e-300 })).toBe(true);
    expect(agree("1e-300", "1.1e-300", { rel: 0.1 })).toBe(true);
    expect(agree("1e-300", "0", { rel: 0.5 })).toBe(false); // relative to 1e-300: the difference is all of it
    expect(agree("1e-300", "0", { rel: 1 })).toBe(true);
    expect(agree("9007199254740993", "9007199254740992", { abs: 0 })).toBe(true); // one double
  });

  it("needs the same shape, strings, booleans and nulls; key order does not matter", () => {
    const tol = { abs: 1 };
    expect(agree('{"a": 1, "b": [1, 2]}', '{"b": [1.5, 2], "a": 1.2}', tol)).toBe(true);
    expect(agree('{"a": 1}', '{"a": 1, "b": 1}', tol)).toBe(false);
    expect(agree('{"a": 1, "b": 1}', '{"a": 1, "c": 1}', tol)).toBe(false);
    expect(agree('{"a": 1}', "[1]", tol)).toBe(false);
    expect(agree("[1, 2]", "[1, 2, 3]", tol)).toBe(false);
    expect(agree("[]", "{}", tol)).toBe(false);
    expect(agree('"1"', "1", tol)).toBe(false);
    expect(agree('"a"', '"b"', tol)).toBe(false);
    expect(agree('"x"', '"x"', tol)).toBe(true);
    expect(agree("true", "1", tol)).toBe(false);
    expect(agree("true", "false", tol)).toBe(false);
    expect(agree('{"a": null}', '{"a": 0}', tol)).toBe(false);
    expect(agree('{"a": null}', "{}", tol)).toBe(false);
    expect(agree('[[{"x": [0.5]}]]', '[[{"x": [1.4]}]]', tol)).toBe(true);
    expect(agree('[[{"x": [0.5]}]]', '[[{"x": [1.6]}]]', tol)).toBe(false);
    expect(agree('{"__proto__": 1}', "{}", tol)).toBe(false);
  });

  it("puts votes in sides led by the first vote each agrees with", () => {
    const vote = (volunteer_id: string, result: string, trusted = false) => ({ volunteer_id, result, trusted, own_hash: `h-${volunteer_id}` });
    // As the caller orders them: trusted first, then by arrival.
    const sides = sidesWithin([vote("t", "1.0", true), vote("a", "1.05"), vote("b", "1.2"), vote("c", "1.25"), vote("d", "not json"), vote("e", "not json")], { abs: 0.1 });
    expect(Object.fromEntries(sides)).toEqual({ t: "h-t", a: "h-t", b: "h-b", c: "h-b", d: "h-d", e: "h-d" });
  });
});
