// Shared by every browser test and the CLI: find the system Chromium or fail loudly.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const candidates = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  "/snap/bin/chromium",
];

/** The Chromium to drive: `CHROMIUM_PATH`, else the first system install found. Throws with the install command when none exists. */
export function findChromium(env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env.CHROMIUM_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      "No Chromium found. Install it (Debian/Ubuntu: `apt-get update && apt-get install -y chromium`) or set CHROMIUM_PATH.",
    );
  }
  return found;
}

/** Flags every headless Chromium here needs (closed network, root, 2 cores). */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** A fresh, empty profile directory. */
export function freshUserDataDir(): string {
  return mkdtempSync(join(tmpdir(), "cc-chromium-"));
}
