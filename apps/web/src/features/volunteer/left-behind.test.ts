import { describe, expect, it } from "vitest";
import { rememberLeftBehind, takeLeftBehind } from "./left-behind.ts";

/** The part of the Web Storage API these functions use, over a Map. */
function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length() {
      return items.size;
    },
    clear: () => items.clear(),
    getItem: (key) => items.get(key) ?? null,
    key: (index) => [...items.keys()][index] ?? null,
    removeItem: (key) => void items.delete(key),
    setItem: (key, value) => void items.set(key, String(value)),
  };
}

describe("what a page left behind", () => {
  it("adds up what pages of one volunteer left, and is taken once", () => {
    const storage = memoryStorage();
    rememberLeftBehind(storage, "v1", { leaseIds: ["a", "b"] });
    rememberLeftBehind(storage, "v1", { leaseIds: ["b", "c"], leaseRequestKey: "k1" });
    expect(takeLeftBehind(storage, "v1")).toEqual({ leaseIds: ["a", "b", "c"], leaseRequestKeys: ["k1"] });
    expect(takeLeftBehind(storage, "v1")).toBeNull();
  });

  it("gives nothing of another volunteer's, and drops it", () => {
    const storage = memoryStorage();
    rememberLeftBehind(storage, "v1", { leaseIds: ["a"] });
    rememberLeftBehind(storage, "v2", { leaseIds: ["b"] });
    expect(takeLeftBehind(storage, "v1")).toBeNull();
    rememberLeftBehind(storage, "v1", { leaseIds: ["a"] });
    expect(takeLeftBehind(storage, "v2")).toBeNull();
    expect(takeLeftBehind(storage, "v1")).toBeNull();
  });

  it("reads what it cannot understand as nothing", () => {
    const storage = memoryStorage();
    storage.setItem("crowdcompute.volunteer.leftBehind", "{not json");
    expect(takeLeftBehind(storage, "v1")).toBeNull();
    storage.setItem("crowdcompute.volunteer.leftBehind", JSON.stringify({ volunteerId: "v1", leaseIds: [1, "a"], leaseRequestKeys: [] }));
    expect(takeLeftBehind(storage, "v1")).toEqual({ leaseIds: ["a"], leaseRequestKeys: [] });
  });
});
