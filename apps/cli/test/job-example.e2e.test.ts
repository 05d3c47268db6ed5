// examples/hash-search/job.js, the job API's example, as a user runs it: against the real
// server process, computed by a real `crowdcompute volunteer` (headless Chromium), every
// result checked by the script with Node's own sha256 as it arrives.
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@crowdcompute/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePortPair, removeTempDirs, repoRoot, type ServerProcess, spawnCli, startServerProcess, tempDir, userShellEnv } from "./helpers.ts";

/** The command examples/README.md shows for the script, without its key and arguments. */
const command = "npx --no node examples/hash-search/job.js";

describe("the job API example", () => {
  let server: ServerProcess;
  let key: string;

  beforeAll(async () => {
    server = await startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    const anonymous = createClient({ baseUrl: server.url });
    const session = await anonymous.register("jobs@example.com", "a long password");
    key = (await anonymous.withToken(session.token).createApiKey("job example")).key;
  });

  afterAll(async () => {
    await server?.stop();
    removeTempDirs();
  });

  it("hash-search/job.js, run as the README writes it from a shell whatever its `node`, computes a range on a browser volunteer and checks every result as it comes", async () => {
    for (const readme of ["examples/README.md", "README.md"]) expect(readFileSync(join(repoRoot, readme), "utf8")).toContain(command);
    // The shell's own `node` may be older than the project's (Node 20 here): the command must not depend on it.
    const shellNode = execFileSync("sh", ["-c", "node -e 'console.log(process.version)'"], { env: userShellEnv(), encoding: "utf8" }).trim();
    console.log(`the shell's node: ${shellNode}`);
    const volunteer = spawnCli(["volunteer", "--threads", "2", "--json"], { XDG_CONFIG_HOME: tempDir("config"), CROWDCOMPUTE_SERVER: server.url });
    const volunteerExited = new Promise((resolve) => volunteer.once("exit", resolve));
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(
          "sh",
          ["-c", `${command} 400000 100000`],
          { cwd: repoRoot, env: userShellEnv({ CROWDCOMPUTE_SERVER: server.url, CROWDCOMPUTE_API_KEY: key }), timeout: 150_000 },
          (error, out, err) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out, stderr: err }),
        );
        child.stdin?.end();
      });
      expect({ code, stderr }).toMatchObject({ code: 0 });
      expect(stdout).toMatch(/^4 chunks checked, \d+ hits, 0 wrong$/m);
      expect(stderr).toMatch(/^task [0-9a-f-]{36}: 4 chunks$/m);
      expect(stderr).toMatch(/^4\/4 chunks, done$/m);
    } finally {
      volunteer.kill("SIGTERM");
      await volunteerExited;
    }
  });
});
