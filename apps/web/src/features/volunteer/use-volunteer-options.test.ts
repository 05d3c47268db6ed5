import { describe, expect, it } from "vitest";
import { insideSchedule, nextScheduleChange } from "./use-volunteer-options.ts";

const at = (hh: number, mm = 0) => new Date(2026, 0, 15, hh, mm);

describe("the daily schedule", () => {
  it("runs within a daytime window and outside an overnight one's gap", () => {
    const day = { on: true, from: "09:00", to: "17:30" };
    expect([insideSchedule(day, at(8, 59)), insideSchedule(day, at(9)), insideSchedule(day, at(17, 29)), insideSchedule(day, at(17, 30))]).toEqual([false, true, true, false]);
    const night = { on: true, from: "22:00", to: "07:00" };
    expect([insideSchedule(night, at(21, 59)), insideSchedule(night, at(23)), insideSchedule(night, at(3)), insideSchedule(night, at(7))]).toEqual([false, true, true, false]);
    expect(insideSchedule({ ...night, on: false }, at(12))).toBe(true);
    expect(insideSchedule({ on: true, from: "08:00", to: "08:00" }, at(3))).toBe(true);
  });

  it("says when the window next opens or closes", () => {
    const night = { on: true, from: "22:00", to: "07:00" };
    expect(new Date(nextScheduleChange(night, at(12))).getHours()).toBe(22);
    expect(nextScheduleChange(night, at(23)) - at(23).getTime()).toBe(8 * 3_600_000);
    expect(nextScheduleChange(night, at(3)) - at(3).getTime()).toBe(4 * 3_600_000);
  });
});
