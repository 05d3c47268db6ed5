// One volunteer, one identity (docs/architecture.md, "The CLI volunteer"): `crowdcompute
// volunteer` on real Chromium keeps its volunteer across runs in the config file, links it to
// the account once `login` has run (it then leases the account's allow-listed tasks), makes a
// signed-in machine's volunteers the account's from the start, and names them after the
// account and the host.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Client, createClient, type Task } from "@crowdcompute/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { alive, freePortPair, removeTempDirs, runCli, type ServerProcess, spawnCli, startServerProcess, tempDir, until } from "./helpers.ts";

interface IdentityEvent {
  event: "identity";
  instance: number;
  volunteerId: string;
  name: string;
  account: string | null;
  origin: "kept" | "made" | "linked";
  replaced: string | null;
}

interface StoredConfig {
  volunteers?: Record<string, { id: string; token: string; name: string }[]>;
}

describe("crowdcompute volunteer keeps one identity", () => {
  let server: ServerProcess;
  let creator: Client;
  let anonymous: Client;
  const children: ReturnType<typeof spawnCli>[] = [];
  const orphanedProfiles: string[] = [];

  beforeAll(async () => {
    server = await startServerProcess({ port: await freePortPair(), dataDir: join(tempDir("data"), "data") });
    anonymous = createClient({ baseUrl: server.url });
    const session = await anonymous.register("owner@example.com", "a long password");
    creator = anonymous.withToken((await anonymous.withToken(session.token).createApiKey("tasks")).key);
  });
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  afterAll(async () => {
    await server?.stop();
    removeTempDirs(...orphanedProfiles);
  });

  /** Runs `volunteer --json` until `task` is done, then SIGTERM; returns its identity events. */
  async function volunteerUntilDone(env: Record<string, string>, task: Task, extra: string[] = []): Promise<IdentityEvent[]> {
    const child = spawnCli(["volunteer", "--json", "--threads", "1", ...extra], env);
    children.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (data) => (stdout += String(data)));
    child.stderr!.on("data", (data) => (stderr += String(data)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      await until(`task ${task.id} done (volunteer stderr: ${stderr})`, async () => (await creator.getTask(task.id)).status === "done", 120_000);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    return stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { event: string })
      .filter((event): event is IdentityEvent => event.event === "identity");
  }

  const readConfigFile = (env: Record<string, string>) => JSON.parse(readFileSync(join(env.XDG_CONFIG_HOME!, "crowdcompute", "config.json"), "utf8")) as StoredConfig;
  const smallTask = (name: string, extra: Partial<Parameters<Client["createTask"]>[0]> = {}) =>
    creator.createTask({ name, code: "export default (n) => n * 2", inputs: [1, 2, 3], start: true, ...extra });

  it("keeps its volunteer across runs, then computes for the account once logged in", async () => {
    const home = tempDir("home");
    const env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: server.url };

    // Anonymous: a new volunteer named after the host, kept in the config (0600).
    const [first] = await volunteerUntilDone(env, await smallTask("first run"));
    expect(first).toMatchObject({ instance: 1, name: hostname(), account: null, origin: "made", replaced: null });
    const stored = readConfigFile(env).volunteers![server.url]![0]!;
    expect(stored).toMatchObject({ id: first!.volunteerId, name: hostname() });
    expect(statSync(join(env.XDG_CONFIG_HOME, "crowdcompute", "config.json")).mode & 0o777).toBe(0o600);
    const afterFirst = await anonymous.withToken(stored.token).volunteerFigures();
    expect(afterFirst.chunksDone).toBe(3);

    // Another run: the same volunteer, and what it computes adds up on it.
    const [second] = await volunteerUntilDone(env, await smallTask("second run"));
    expect(second).toMatchObject({ volunteerId: first!.volunteerId, origin: "kept", account: null });
    expect((await anonymous.withToken(stored.token).volunteerFigures()).chunksDone).toBe(6);

    // Logged in: the same volunteer becomes the account's, and so may run a task only the
    // account's volunteers may run.
    const login = await runCli(["login", "--register", "--email", "alice@example.com", "--password-stdin"], { env, input: "a long password\n" });
    expect(login.code).toBe(0);
    const alice = (await anonymous.login("alice@example.com", "a long password")).user;
    const privateTask = await smallTask("alice only", { allowUsers: [alice.id] });
    const [third] = await volunteerUntilDone(env, privateTask);
    // Named after the host while anonymous, it now says whose machine it is.
    expect(third).toMatchObject({ volunteerId: first!.volunteerId, origin: "linked", account: "alice@example.com", name: `alice's ${hostname()}` });
    const linked = await anonymous.withToken(readConfigFile(env).volunteers![server.url]![0]!.token).volunteerFigures();
    expect(linked).toMatchObject({ id: first!.volunteerId, userId: alice.id, chunksDone: 9 });

    // --name renames it, and the name is kept.
    const [renamed] = await volunteerUntilDone(env, await smallTask("renamed"), ["--name", "Alice's build box"]);
    expect(renamed).toMatchObject({ volunteerId: first!.volunteerId, origin: "kept", name: "Alice's build box" });
    expect(readConfigFile(env).volunteers![server.url]![0]!.name).toBe("Alice's build box");
  });

  it("a signed-in machine's volunteers are the account's from the start, named after the account and the host", async () => {
    const home = tempDir("home2");
    const env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: server.url };
    expect((await runCli(["login", "--register", "--email", "bob@example.com", "--password-stdin"], { env, input: "a long password\n" })).code).toBe(0);
    const bob = (await anonymous.login("bob@example.com", "a long password")).user;
    const events = await volunteerUntilDone(env, await smallTask("bob only", { allowUsers: [bob.id] }), ["--instances", "2"]);
    expect(events.map(({ instance, name, account, origin }) => ({ instance, name, account, origin }))).toEqual([
      { instance: 1, name: `bob's ${hostname()}`, account: "bob@example.com", origin: "made" },
      { instance: 2, name: `bob's ${hostname()} (2)`, account: "bob@example.com", origin: "made" },
    ]);
    const kept = readConfigFile(env).volunteers![server.url]!;
    expect(kept.map((volunteer) => volunteer.id)).toEqual(events.map((event) => event.volunteerId));
    for (const volunteer of kept) expect((await anonymous.withToken(volunteer.token).volunteerFigures()).userId).toBe(bob.id);
  });

  it("two volunteer processes at once are two volunteers, each kept for the next run; a killed one's slot is taken over", async () => {
    const home = tempDir("home3");
    const env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: server.url };
    /** Starts `volunteer --json` and resolves with its identity event once it has one. */
    const start = async () => {
      const child = spawnCli(["volunteer", "--json", "--threads", "1"], env);
      children.push(child);
      let stdout = "";
      child.stdout!.on("data", (data) => (stdout += String(data)));
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      const identity = await until("an identity event", () =>
        stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line) as IdentityEvent)
          .find((event) => event.event === "identity"),
      );
      const profiles = () =>
        stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { event: string; profile?: string })
          .flatMap((event) => (event.event === "browser" && event.profile ? [event.profile] : []));
      return { child, exited, identity, profiles };
    };
    const a = await start();
    const b = await start();
    expect(a.identity).toMatchObject({ name: hostname(), origin: "made" });
    expect(b.identity).toMatchObject({ name: `${hostname()} (2)`, origin: "made" });
    expect(b.identity.volunteerId).not.toBe(a.identity.volunteerId);
    await until("a's browser", () => a.profiles().length > 0);
    a.child.kill("SIGKILL"); // its slot's holder is gone: the next run takes it over
    orphanedProfiles.push(...a.profiles()); // a SIGKILLed volunteer cannot delete its Chromium profile
    b.child.kill("SIGTERM");
    expect(await b.exited).toBe(0);
    await a.exited;
    // A killed volunteer of another server left its slot file: the next claim sweeps it away.
    const slots = join(env.XDG_CONFIG_HOME, "crowdcompute", "volunteer-slots");
    let deadPid = 4_000_000;
    while (alive(deadPid)) deadPid -= 1;
    writeFileSync(join(slots, "0123456789abcdef-0.pid"), String(deadPid));
    const c = await start();
    expect(c.identity).toMatchObject({ volunteerId: a.identity.volunteerId, origin: "kept" });
    expect(readdirSync(slots).filter((name) => name.startsWith("0123456789abcdef"))).toEqual([]);
    const d = await start();
    expect(d.identity).toMatchObject({ volunteerId: b.identity.volunteerId, origin: "kept" });
    for (const run of [c, d]) run.child.kill("SIGTERM");
    expect([await c.exited, await d.exited]).toEqual([0, 0]);
  });

  it("three volunteer processes started at the same moment get three slots, and all three are kept", async () => {
    const home = tempDir("home4");
    const env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: server.url };
    const runs = [0, 1, 2].map(() => {
      const child = spawnCli(["volunteer", "--json", "--threads", "1"], env);
      children.push(child);
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (data) => (stdout += String(data)));
      child.stderr!.on("data", (data) => (stderr += String(data)));
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      const events = () =>
        stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line) as IdentityEvent | { event: string; profile?: string });
      return { child, exited, events, stderr: () => stderr };
    });
    const identities = await Promise.all(
      runs.map((run) => until(`an identity event (stderr: ${run.stderr()})`, () => run.events().find((event): event is IdentityEvent => event.event === "identity"))),
    );
    for (const run of runs) run.child.kill("SIGTERM");
    expect(await Promise.all(runs.map((run) => run.exited))).toEqual([0, 0, 0]);
    expect(identities.map((identity) => identity.name).sort()).toEqual([hostname(), `${hostname()} (2)`, `${hostname()} (3)`]);
    expect(new Set(identities.map((identity) => identity.volunteerId)).size).toBe(3);
    const kept = readConfigFile(env).volunteers![server.url]!;
    expect(kept.map((volunteer) => volunteer?.id).sort()).toEqual(identities.map((identity) => identity.volunteerId).sort());
  });

  it("started before its server is up, it retries until it can get its identity, then volunteers", async () => {
    const port = await freePortPair();
    const home = tempDir("home5");
    const env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, CROWDCOMPUTE_SERVER: `http://localhost:${port}` };
    const child = spawnCli(["volunteer", "--json", "--threads", "1"], env);
    children.push(child);
    let stdout = "";
    child.stdout!.on("data", (data) => (stdout += String(data)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const events = () =>
      stdout
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { event: string; error?: string });
    await until("a retry while the server is down", () => events().find((event) => event.event === "retry"));
    expect(events().find((event) => event.event === "retry")!.error).toMatch(/cannot reach the server \(ECONNREFUSED\)/);
    const late = await startServerProcess({ port, dataDir: join(tempDir("late"), "data") });
    try {
      await until("an identity event", () => events().find((event) => event.event === "identity"));
      await until("its browser", () => events().find((event) => event.event === "browser"));
    } finally {
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      await late.stop();
    }
  });
});
