import { describe, expect, it } from "vitest";
import { jsonTextProblem } from "./json-limits.ts";

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe("jsonTextProblem", () => {
  it("agrees with JSON.parse on what is one JSON value", () => {
    const texts = [
      "1",
      "-0",
      "0.5",
      "-1.25e+10",
      "1E-3",
      "01",
      "-",
      "1.",
      ".5",
      "1e",
      "+1",
      "Infinity",
      "NaN",
      "true",
      "false",
      "null",
      "nul",
      "tru",
      "truex",
      "nullnull",
      '""',
      '"a"',
      '"\\u00e9\\n\\"\\\\\\/"',
      '"\\x"',
      '"\\u12"',
      '"\\u12g4"',
      '"a',
      '"\t"',
      '"é😀"',
      "[]",
      "[ ]",
      "[1,2]",
      "[1,]",
      "[,1]",
      "[1 2]",
      "[[[]]]",
      "[[]",
      "[]]",
      "]",
      "{}",
      '{"a":1}',
      '{"a":1,"b":[{"c":null}]}',
      '{"a"}',
      '{"a":}',
      "{a:1}",
      '{"a":1,}',
      '{,"a":1}',
      '{"a" : 1 , "b" :2}',
      " 1 ",
      "\n[1]\r\n",
      "",
      " ",
      "1 2",
      "{} {}",
      '"a" "b"',
      "[1]x",
    ];
    for (const text of texts) expect([text, jsonTextProblem(text) === null]).toEqual([text, parses(text)]);
    for (const value of [0, -3.5e-7, "x\u0000\u2028\ud800y", [1, "two", { three: [null, true, false] }], { "": {}, 'a"b': [[]] }]) {
      expect(jsonTextProblem(JSON.stringify(value))).toBeNull();
      expect(jsonTextProblem(JSON.stringify(value, null, 2))).toBeNull();
    }
  });

  it("finds where a value nests deeper than the limit, strings not counted", () => {
    expect(jsonTextProblem(`${"[".repeat(64)}${"]".repeat(64)}`)).toBeNull();
    expect(jsonTextProblem(`${"[".repeat(65)}${"]".repeat(65)}`)).toEqual({ kind: "depth", at: 64 });
    expect(jsonTextProblem(`{"a":${'{"a":'.repeat(64)}1${"}".repeat(65)}`)).toEqual({ kind: "depth", at: 5 + 64 * 5 - 5 });
    expect(jsonTextProblem(`["${"[".repeat(100)}"]`)).toBeNull();
    expect(jsonTextProblem("[[[1]]]", 2)).toEqual({ kind: "depth", at: 2 });
    expect(jsonTextProblem("[1,", 64)).toEqual({ kind: "syntax", at: 3 });
  });
});
