// Finding and launching the system Chromium that volunteers and dry runs drive.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";
import { UsageError } from "./errors.ts";

const candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable", "/snap/bin/chromium"];

/** --browser, else CHROMIUM_PATH, else the first system install found; a usage error with the install command otherwise. */
export function locateChromium(flag: string | undefined, fromEnv: string | undefined): string {
  const chosen = flag ?? fromEnv;
  if (chosen) {
    if (!existsSync(chosen)) throw new UsageError(`${flag ? "--browser" : "CHROMIUM_PATH"}: no browser at ${chosen}`);
    return chosen;
  }
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new UsageError(
      `no Chromium found (looked in ${candidates.join(", ")}).\n` +
        "Install it (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y chromium`), or pass --browser PATH or set CHROMIUM_PATH.",
    );
  }
  return found;
}

export interface LaunchedBrowser {
  browser: Browser;
  pid: number | null;
  /** The profile directory, deleted by `close()`. */
  userDataDir: string;
  /** Closes the browser (killing it if it does not answer) and deletes its profile. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium with a fresh profile. `pipe: true` talks to it over stdio
 * rather than a port, so if this process dies (even by SIGKILL) the pipe closes and
 * Chromium exits with it instead of computing on as an orphan (checked in test/volunteer).
 */
export async function launchChromium(executablePath: string, { webgpu = false }: { webgpu?: boolean } = {}): Promise<LaunchedBrowser> {
  const userDataDir = await mkdtemp(join(tmpdir(), "crowdcompute-chromium-"));
  const args = [
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    // A hidden headless page must not be throttled: it is the whole point.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    ...(webgpu ? ["--enable-unsafe-webgpu"] : ["--disable-gpu"]),
    // Chromium refuses to start as root with its OS sandbox on; elsewhere keep it, since
    // it is one of the layers between work code and the machine (docs/architecture.md, "The sandbox").
    ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
  ];
  let browser: Browser;
  try {
    browser = await puppeteer.launch({ executablePath, headless: true, pipe: true, userDataDir, args, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  const child = browser.process();
  return {
    browser,
    pid: child?.pid ?? null,
    userDataDir,
    async close() {
      const closing = browser.close().catch(() => {});
      const timer = new Promise((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([closing, timer]);
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await rm(userDataDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
    },
  };
}
