// Shared by every browser test: the system Chromium (found as the CLI finds it) and the flags it needs here.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { locateChromium } from "../apps/cli/src/chromium.ts";

/**
 * The Chromium to drive in tests: `CHROMIUM_PATH`, else the first system install found (the
 * same search as the `crowdcompute` CLI's). Throws with the install command when none exists.
 */
export function findChromium(env: Record<string, string | undefined> = process.env): string {
  return locateChromium(undefined, env.CHROMIUM_PATH);
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
