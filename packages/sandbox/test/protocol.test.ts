import { MAX_ERROR_MESSAGE_BYTES } from "@crowdcompute/contract/limits";
import { expect, test } from "vitest";
import { describeError, failure, truncateUtf8 } from "../src/protocol.ts";

const utf8 = (text: string): number => new TextEncoder().encode(text).length;

test("error messages are cut to 4 KiB of UTF-8 without splitting a character", () => {
  expect(truncateUtf8("short")).toBe("short");
  for (const unit of ["x", "é", "€", "😀"]) {
    const cut = truncateUtf8(unit.repeat(5000));
    expect(utf8(cut)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(utf8(cut)).toBeGreaterThan(MAX_ERROR_MESSAGE_BYTES - 4);
    expect(cut).toBe(unit.repeat(cut.length / unit.length));
  }
  const outcome = failure("k", "throw", "x".repeat(10_000_000), 1);
  expect(!outcome.ok && outcome.error.message.length).toBe(MAX_ERROR_MESSAGE_BYTES);
});

test("describeError survives values that throw when converted", () => {
  expect(describeError(new Error("boom"))).toBe("boom");
  expect(describeError("bare")).toBe("bare");
  expect(describeError(null)).toBe("null");
  expect(describeError(Symbol("s"))).toBe("Symbol(s)");
  expect(
    describeError({
      toString: () => {
        throw new Error();
      },
    }),
  ).toMatch(/cannot be converted/);
});
