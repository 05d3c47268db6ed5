// What the live benches share (progress, vanished): the real `crowdcompute volunteer` (headless
// Chromium on the volunteer page) that can be killed outright, its Chromium with it; their API
// is api-process.ts's `liveServer`.
// Not a bench itself (run.ts runs only *.bench.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../apps/cli/bin/crowdcompute.js", import.meta.url));

export interface CliVolunteer {
  child: ChildProcess;
  /** SIGKILL to the CLI and its Chromium at once: nothing is given back, nothing more is sent. */
  kill(): Promise<void>;
  output(): string;
}

/** `crowdcompute volunteer --threads 1 --json` on `base`, a fresh volunteer (its own config folder). */
export function cliVolunteer(base: string): CliVolunteer {
  const env = { ...process.env, XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), "cc-live-volunteer-")) };
  const child = spawn(process.execPath, [cli, "volunteer", "--server", base, "--threads", "1", "--json"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let browserPid: number | null = null;
  child.stdout!.on("data", (data: Buffer) => {
    output += data.toString();
    const pid = /"event":"browser"[^\n]*"pid":(\d+)/.exec(output)?.[1];
    if (pid) browserPid = Number(pid);
  });
  child.stderr!.on("data", (data: Buffer) => (output += data.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    child,
    output: () => output,
    kill: async () => {
      if (browserPid !== null) {
        try {
          process.kill(browserPid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
