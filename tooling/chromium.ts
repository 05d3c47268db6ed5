// Shared by every browser test: the system Chromium and the flags it needs here. Tooling imports
// no app, so the places looked in are written here too; they are the ones the `crowdcompute`
// CLI looks in (apps/cli/src/chromium.ts), so tests drive the browser a user's CLI would.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable", "/snap/bin/chromium"];

/**
 * The Chromium to drive in tests: `CHROMIUM_PATH`, else the first system install found. Throws
 * with the install command when none exists.
 */
export function findChromium(env: Record<string, string | undefined> = process.env): string {
  const chosen = env.CHROMIUM_PATH;
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`CHROMIUM_PATH: no browser at ${chosen}`);
    return chosen;
  }
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`no Chromium found (looked in ${candidates.join(", ")}). Install it (Debian/Ubuntu: \`sudo apt-get update && sudo apt-get install -y chromium\`), or set CHROMIUM_PATH.`);
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
