// The escape suite, storage part (docs/architecture.md, "The sandbox"): one creator's task
// tries to leave data for another creator's task by every storage route a worker has, in a
// profile that allows storage, across a browser restart; and the frame wipes what its origin
// holds. Each route's positive control is the same payload in a plain worker of the app page,
// in a profile of its own, which does find its data after the restart.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { freshUserDataDir } from "@crowdcompute/tooling/chromium";
import type { Frame } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openVolunteer, results, runBatch, runInPlainWorker, taskFor, type Volunteer } from "./harness.ts";
import { startServers, type TestServers } from "./servers.ts";
import { type StorageRoute, storageRoutes, storageSource } from "./storage-attacks.ts";

let servers: TestServers;
const profiles: string[] = [];

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await servers?.close();
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
});

function profile(): string {
  const dir = freshUserDataDir();
  profiles.push(dir);
  return dir;
}

/** Bytes on disk under `dir`. */
const diskBytes = (dir: string): number => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
const MiB = 1024 * 1024;

/** Routes a dedicated worker has (the others are the frame's own, windows only). */
const workerRoutes = storageRoutes.filter((route) => route !== "localStorage" && route !== "sessionStorage");
const fillerMiB = 6;

// Two creators' tasks: different ids and code, as a volunteer page would get them from the server.
const writerTask = taskFor(`${storageSource}\nexport default (input) => ccStorage.write(input);`, { taskId: "creator-a-task", timeoutMs: 60_000 });
const readerTask = taskFor(`${storageSource}\nexport default () => ccStorage.read();`, { taskId: "creator-b-task", timeoutMs: 60_000 });
const harmless = taskFor("export default (x) => x;", { taskId: "harmless" });

async function inSandbox(volunteer: Volunteer, task: typeof writerTask, input: unknown): Promise<Record<StorageRoute, unknown>> {
  const [found] = results(await runBatch(volunteer, task, [{ key: "c", index: 0, input }]));
  return found as Record<StorageRoute, unknown>;
}

/** Routes whose value holds the marker. */
const holding = (found: Record<string, unknown>, marker: string): string[] =>
  Object.entries(found)
    .filter(([, value]) => typeof value === "string" && value.includes(marker))
    .map(([route]) => route);

describe("storage", () => {
  test("what a task stores by any route is gone for another creator's task, even after a browser restart; outside the sandbox it stays (positive control)", { timeout: 180_000 }, async () => {
    const marker = `cc-secret-${randomBytes(6).toString("hex")}`;

    // The sandbox: a baseline run, then the writer, then (after a restart) the reader.
    const sandboxed = profile();
    let volunteer = await openVolunteer(sandboxed, servers);
    await runBatch(volunteer, harmless, [{ key: "h", index: 0, input: 1 }]);
    await volunteer.close();
    const baseline = diskBytes(sandboxed);
    volunteer = await openVolunteer(sandboxed, servers);
    const wrote = await inSandbox(volunteer, writerTask, { marker, fillerMiB });
    await volunteer.close();
    const grown = diskBytes(sandboxed) - baseline;
    volunteer = await openVolunteer(sandboxed, servers);
    const read = await inSandbox(volunteer, readerTask, null);
    await volunteer.close();
    console.log("in the sandbox: wrote", wrote, "read after a restart", read, `disk grew ${(grown / MiB).toFixed(1)} MiB`);

    // The control: the same payload in a plain worker of the app page, in a profile of its own.
    const control = profile();
    volunteer = await openVolunteer(control, servers);
    await volunteer.close();
    const controlBaseline = diskBytes(control);
    volunteer = await openVolunteer(control, servers);
    const controlWrote = await runInPlainWorker<Record<string, unknown>>(volunteer, storageSource, "ccStorage.write(input)", { marker, fillerMiB });
    await volunteer.close();
    const controlGrown = diskBytes(control) - controlBaseline;
    volunteer = await openVolunteer(control, servers);
    const controlRead = await runInPlainWorker<Record<string, unknown>>(volunteer, storageSource, "ccStorage.read()", null);
    await volunteer.close();
    console.log("outside the sandbox: wrote", controlWrote, "read after a restart", controlRead, `disk grew ${(controlGrown / MiB).toFixed(1)} MiB`);

    // Every worker route keeps data across a restart in this profile, and the filler weighed on the disk...
    expect(holding(controlRead, marker).sort()).toEqual([...workerRoutes].sort());
    expect(controlGrown).toBeGreaterThan(fillerMiB * workerRoutes.length * MiB * 0.8);
    // ...but from the sandbox no route stores anything, and nothing is left to read.
    for (const route of workerRoutes) expect(wrote[route], route).toMatch(/^failed: /);
    expect(holding(read, marker)).toEqual([]);
    expect(JSON.stringify(read)).not.toContain(marker);
    expect(grown).toBeLessThan(2 * MiB);
  });

  describe("the frame wipes its origin's storage", () => {
    const sandboxFrame = (volunteer: Volunteer): Frame => {
      const frame = volunteer.page.frames().find((candidate) => candidate.url().startsWith(servers.sandboxOrigin));
      if (!frame) throw new Error("no sandbox frame");
      return frame;
    };
    /** Runs the payload in the frame's own window (CDP evaluation is not bound by the frame's CSP). */
    const inFrame = (volunteer: Volunteer, call: string): Promise<Record<string, unknown>> =>
      sandboxFrame(volunteer).evaluate(`(() => { ${storageSource}; return ${call}; })()`) as Promise<Record<string, unknown>>;
    /** Routes a window has: all but the worker-only synchronous ones. */
    const frameRoutes = storageRoutes.filter((route) => route !== "opfs-sync-handle" && route !== "webkitFileSystemSync");

    test("on a task switch, by every route; seeded data is there before it (positive control)", { timeout: 60_000 }, async () => {
      const volunteer = await openVolunteer(profile(), servers);
      try {
        await runBatch(volunteer, harmless, [{ key: "h", index: 0, input: 1 }]);
        const marker = `cc-seed-${randomBytes(6).toString("hex")}`;
        const seeded = await inFrame(volunteer, `ccStorage.write(${JSON.stringify({ marker })})`);
        const before = await inFrame(volunteer, "ccStorage.read()");
        expect(holding(before, marker).sort(), JSON.stringify(seeded)).toEqual([...frameRoutes].sort());

        await runBatch(volunteer, taskFor("export default (x) => x * 2;", { taskId: "next-task" }), [{ key: "n", index: 0, input: 2 }]);
        const after = await inFrame(volunteer, "ccStorage.read()");
        expect(holding(after, marker)).toEqual([]);
      } finally {
        await volunteer.close();
      }
    });

    test("at start: what an earlier session left is gone after a restart", { timeout: 60_000 }, async () => {
      const dir = profile();
      let volunteer = await openVolunteer(dir, servers);
      const marker = `cc-seed-${randomBytes(6).toString("hex")}`;
      try {
        await inFrame(volunteer, `ccStorage.write(${JSON.stringify({ marker })})`);
        expect(holding(await inFrame(volunteer, "ccStorage.read()"), marker).sort()).toEqual([...frameRoutes].sort());
      } finally {
        await volunteer.close();
      }
      volunteer = await openVolunteer(dir, servers);
      try {
        // No task has run: the wipe at start alone cleared it.
        const after = await inFrame(volunteer, "ccStorage.read()");
        expect(holding(after, marker), JSON.stringify(after)).toEqual([]);
      } finally {
        await volunteer.close();
      }
    });
  });
});
