import { describe, expect, it } from "vitest";
import { formatAgo, formatCompact, formatCredit, formatDuration, formatNumber, formatRate, plural } from "./format.ts";

describe("figures on every page", () => {
  it("writes counts with grouping and words that agree with them", () => {
    expect(formatNumber(1234567)).toBe("1,234,567");
    expect(plural(1, "chunk")).toBe("1 chunk");
    expect(plural(0, "chunk")).toBe("0 chunks");
    expect(plural(1024, "chunk")).toBe("1,024 chunks");
    expect(plural(2, "copy", "copies")).toBe("2 copies");
  });

  it("rounds durations once, so no unit overflows", () => {
    expect(formatDuration(0.4)).toBe("<1 ms");
    expect(formatDuration(999.6)).toBe("1.0 s");
    expect(formatDuration(1500)).toBe("1.5 s");
    expect(formatDuration(59_960)).toBe("1 min");
    expect(formatDuration(119_700)).toBe("2 min");
    expect(formatDuration(3_599_700)).toBe("1 h");
    expect(formatDuration(5_430_000)).toBe("1 h 31 min");
  });

  it("writes rates, credit in CPU hours, axis labels and ages", () => {
    expect(formatRate(0.5)).toBe("0.50/s");
    expect(formatRate(12.34)).toBe("12.3/s");
    expect(formatRate(12_345.6)).toBe("12,346/s");
    expect(formatCredit(0)).toBe("0 CPU h");
    expect(formatCredit(1000)).toBe("<0.01 CPU h");
    expect(formatCredit(900_000)).toBe("0.25 CPU h");
    expect(formatCredit(45_000_000)).toBe("12.5 CPU h");
    expect(formatCredit(3_600_000 * 1234)).toBe("1,234 CPU h");
    expect([formatCompact(950), formatCompact(1200), formatCompact(3_400_000), formatCompact(0.25)]).toEqual(["950", "1.2k", "3.4M", "0.25"]);
    expect([formatAgo(5_000), formatAgo(300_000), formatAgo(7_200_000), formatAgo(86_400_000)]).toEqual(["just now", "5 min ago", "2 h ago", "1 day ago"]);
  });
});
