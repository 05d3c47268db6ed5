// The embedded data lock (issue 15). Before, it was a pid file: a crashed server's pid that
// lingered as a zombie, or was reused by any other process, made `npm start` refuse to start.
// Now it is a socket the kernel closes when its holder dies: these tests kill real holders.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lockDataDir } from "../src/data-dir.ts";

const moduleUrl = new URL("../src/data-dir.ts", import.meta.url).href;
// A process that takes the lock, says so, and holds it until its stdin closes.
const holderScript = `
const { lockDataDir } = await import(${JSON.stringify(moduleUrl)});
try {
  await lockDataDir(process.argv[1]);
  console.log("locked " + process.pid);
} catch (error) {
  console.log("refused " + error.message);
  process.exit(3);
}
if (process.argv[2] === "forever") setInterval(() => {}, 60_000);
else process.stdin.resume().on("end", () => process.exit(0));
`;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Spawns `command` and resolves with its first line of output (and the child). */
function firstLine(command: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (data: Buffer) => {
      out += data.toString();
      const newline = out.indexOf("\n");
      if (newline >= 0) resolve({ child, line: out.slice(0, newline) });
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before a line: ${out}`)));
  });
}
const holder = (dir: string) => firstLine(process.execPath, ["--input-type=module", "-e", holderScript, dir]);
const exited = (child: ChildProcess) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once("exit", resolve)));

const newDir = () => mkdtempSync(join(tmpdir(), "cc-lock-"));

describe("the embedded data directory lock", () => {
  it("refuses a second holder while the first lives, naming its pid, and frees the directory on release", async () => {
    const dir = newDir();
    const release = await lockDataDir(dir);
    expect(lstatSync(join(dir, "lock")).isSocket()).toBe(true);
    const other = await holder(dir);
    expect(other.line).toBe(`refused ${dir} is in use by process ${process.pid} (since ${other.line.match(/since (\S+)\)/)![1]}); stop it first (the embedded database allows one process).`);
    await expect(lockDataDir(dir)).rejects.toThrow(`in use by process ${process.pid}`);
    await release();
    expect(existsSync(join(dir, "lock"))).toBe(false);
    const again = await holder(dir);
    expect(again.line).toMatch(/^locked \d+$/);
    again.child.stdin!.end();
    await exited(again.child);
  });

  it("is taken over after its holder is killed with SIGKILL", async () => {
    const dir = newDir();
    const first = await holder(dir);
    expect(first.line).toBe(`locked ${first.child.pid}`);
    await expect(lockDataDir(dir)).rejects.toThrow(`in use by process ${first.child.pid}`);
    first.child.kill("SIGKILL");
    await exited(first.child);
    expect(lstatSync(join(dir, "lock")).isSocket()).toBe(true); // left behind, but nobody listens
    const release = await lockDataDir(dir);
    const refused = await holder(dir);
    expect(refused.line).toContain(`in use by process ${process.pid}`);
    await release();
  });

  it("is taken over when its dead holder lingers as a zombie (which a pid file took for alive)", async () => {
    const dir = newDir();
    // `sh` starts the holder, then becomes `sleep`, which never reaps it: killed, it stays a zombie.
    const parent = await firstLine("sh", ["-c", `"${process.execPath}" --input-type=module -e '${holderScript.replaceAll("'", "'\\''")}' "${dir}" forever & exec sleep 60`]);
    const pid = Number(parent.line.split(" ")[1]);
    expect(parent.line).toBe(`locked ${pid}`);
    process.kill(pid, "SIGKILL");
    const stateOf = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0];
    // A zombie: its main thread is dead and unreaped (its other threads may take a moment more).
    for (let i = 0; i < 100 && stateOf() !== "Z"; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stateOf()).toBe("Z");
    expect(() => process.kill(pid, 0)).not.toThrow(); // what the pid file went by: "alive"
    const release = await lockDataDir(dir);
    await release();
  });

  it("takes over a pid file left by an older version, whoever has that pid now", async () => {
    const dir = newDir();
    writeFileSync(join(dir, "lock"), String(process.ppid)); // a live process, as a reused pid would be
    const release = await lockDataDir(dir);
    expect(lstatSync(join(dir, "lock")).isSocket()).toBe(true);
    await release();
  });

  it("lets exactly one of several processes that start at once over a dead holder's socket take it", async () => {
    const dir = newDir();
    const dead = await holder(dir);
    dead.child.kill("SIGKILL");
    await exited(dead.child);
    const racers = await Promise.all(Array.from({ length: 6 }, () => holder(dir)));
    const lines = racers.map((r) => r.line);
    expect(
      lines.filter((line) => line.startsWith("locked")),
      lines.join("\n"),
    ).toHaveLength(1);
    const winner = racers.find((r) => r.line.startsWith("locked"))!;
    for (const line of lines.filter((l) => !l.startsWith("locked"))) expect(line).toContain(`in use by process ${winner.child.pid}`);
    winner.child.stdin!.end();
    await exited(winner.child);
    const next = await holder(dir);
    expect(next.line).toBe(`locked ${next.child.pid}`);
  });
});
