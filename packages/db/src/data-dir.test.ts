import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lockDataDir } from "./data-dir.ts";

describe("the embedded data directory lock", () => {
  it("lets one process hold the directory, names it to others, and frees it on release", () => {
    const dir = mkdtempSync(join(tmpdir(), "cc-lock-"));
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, "lock"), "utf8")).toBe(String(process.pid));
    // Another live process holds it: the parent of this one stands in for a running server.
    writeFileSync(join(dir, "lock"), String(process.ppid));
    expect(() => lockDataDir(dir)).toThrow(new RegExp(`in use by process ${process.ppid}`));
    writeFileSync(join(dir, "lock"), String(process.pid));
    release();
    expect(existsSync(join(dir, "lock"))).toBe(false);
  });

  it("takes over a lock left by a process that died", () => {
    const dir = mkdtempSync(join(tmpdir(), "cc-lock-"));
    const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
    writeFileSync(join(dir, "lock"), dead.stdout.trim());
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, "lock"), "utf8")).toBe(String(process.pid));
    release();
  });
});
