// Where the CLI finds its server and credentials: flags, then the environment, then the
// config file written by `crowdcompute login`.
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { UsageError } from "./errors.ts";

const defaultServer = "http://localhost:8787";

/** The environment, read once by the entry (src/main.ts) and passed down. */
export interface CliEnv {
  /** CROWDCOMPUTE_API_KEY: a creator token; wins over the config file. */
  apiKey: string | undefined;
  /** CROWDCOMPUTE_SERVER */
  server: string | undefined;
  /** CHROMIUM_PATH */
  chromiumPath: string | undefined;
  /** `$XDG_CONFIG_HOME/crowdcompute/config.json`, else `~/.config/crowdcompute/config.json`. */
  configFile: string;
}

export function readCliEnv(env: Record<string, string | undefined>): CliEnv {
  const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return {
    apiKey: env.CROWDCOMPUTE_API_KEY || undefined,
    server: env.CROWDCOMPUTE_SERVER || undefined,
    chromiumPath: env.CHROMIUM_PATH || undefined,
    configFile: join(configHome, "crowdcompute", "config.json"),
  };
}

/** A volunteer `crowdcompute volunteer` computes as, kept across runs: its id, its token (a credential), its name. */
export interface StoredVolunteer {
  id: string;
  token: string;
  name: string;
}

/**
 * What `login` stores: one credential per server, so a token never goes to another server; and
 * the volunteers `volunteer` computes as on each server, one per browser slot.
 */
export interface ConfigFile {
  defaultServer?: string;
  servers: Record<string, { token: string; email?: string; kind: "api-key" | "session" }>;
  /** Per server, by slot; null for a slot never used. */
  volunteers?: Record<string, (StoredVolunteer | null)[]>;
}

export async function readConfig(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { servers: {} };
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<ConfigFile>;
    return { ...parsed, servers: parsed.servers ?? {} };
  } catch {
    throw new UsageError(`${path} is not valid JSON: fix or delete it, then run \`crowdcompute login\` again`);
  }
}

/**
 * Writes the file readable by its owner only (0600), in a 0700 directory: it holds credentials.
 * Written beside and renamed over, so a `volunteer` starting at the same moment (several do, in
 * tests and benches) reads the old file or the new one, never half of one.
 */
export async function writeConfig(path: string, config: ConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  // `mode` applies only when the file is created; one left by a killed writer keeps its bits otherwise.
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** True while `pid` runs (EPERM: it runs as another user). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Reads, changes and writes the config file as one step among processes: a lock file beside it
 * (made exclusively, naming its holder's pid) keeps two `volunteer` runs starting together from
 * each writing back what it read before the other wrote. A lock whose holder is gone is taken
 * over, and one still held after 5 s is too (a stale pid reused), so nothing waits for ever.
 */
export async function updateConfig(path: string, change: (config: ConfigFile) => ConfigFile | Promise<ConfigFile>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const lock = `${path}.lock`;
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: "wx", mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number((await readFile(lock, "utf8").catch(() => "")).trim());
      if (Date.now() > deadline || (Number.isInteger(holder) && holder > 0 && !processRuns(holder))) await rm(lock, { force: true });
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    await writeConfig(path, await change(await readConfig(path)));
  } finally {
    await rm(lock, { force: true });
  }
}

export async function deleteConfigEntry(path: string, server: string): Promise<boolean> {
  const config = await readConfig(path);
  if (!config.servers[server]) return false;
  delete config.servers[server];
  if (config.defaultServer === server) delete config.defaultServer;
  // The volunteers stay: they are this machine's, and keep computing for the account they joined.
  if (Object.keys(config.servers).length === 0 && Object.keys(config.volunteers ?? {}).length === 0) await rm(path, { force: true });
  else await writeConfig(path, config);
  return true;
}

/** `http://host:port` (plus any path prefix), validated; a usage error otherwise. */
function normalizeServer(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--server: not a URL: ${JSON.stringify(value)} (expected e.g. ${defaultServer})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--server: expected an http(s) URL, got ${value}`);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** The server to talk to: --server, CROWDCOMPUTE_SERVER, the one `login` used last, or the local default. */
export async function resolveServer(env: CliEnv, flag: string | undefined): Promise<string> {
  if (flag) return normalizeServer(flag);
  if (env.server) return normalizeServer(env.server);
  const config = await readConfig(env.configFile);
  return config.defaultServer ?? defaultServer;
}

/** The creator credential for `server`: CROWDCOMPUTE_API_KEY, else what `login` stored for it. */
export async function resolveToken(env: CliEnv, server: string): Promise<string> {
  if (env.apiKey) return env.apiKey;
  const config = await readConfig(env.configFile);
  const entry = config.servers[server];
  if (!entry) {
    throw new UsageError(`not signed in to ${server}: run \`crowdcompute login --server ${server}\` or set CROWDCOMPUTE_API_KEY`);
  }
  return entry.token;
}
