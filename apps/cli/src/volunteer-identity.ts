// Who `crowdcompute volunteer` computes as (docs/architecture.md, "The CLI volunteer"): one
// volunteer per browser slot, kept in the config file across runs, made for the signed-in
// account when there is one (or linked to it once the person signs in), with a name that says
// whose machine it is.
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, type Client, createClient } from "@crowdcompute/sdk";
import { type CliEnv, type ConfigFile, processRuns, readConfig, type StoredVolunteer, updateConfig } from "./config.ts";
import { describeError, ProblemError } from "./errors.ts";

export interface VolunteerIdentity extends StoredVolunteer {
  /** The account it computes for, as far as this machine knows (the email `login` stored, or "the API key's account"); null when anonymous. */
  account: string | null;
  /** How it came to be: kept from an earlier run, made now, or kept and linked to the account now. */
  origin: "kept" | "made" | "linked";
  /** Why an identity kept in the config was not used (the server no longer knows it, or it is another account's); null when none was dropped. */
  replaced: string | null;
}

/** "alice's build-box" for alice@example.com signed in; the host name otherwise; slots past the first numbered. */
function defaultVolunteerName(email: string | null, slot: number, host = hostname()): string {
  const local = email?.split("@")[0]?.trim();
  const base = local ? `${local}'s ${host}` : host;
  return slot === 0 ? base : `${base} (${slot + 1})`;
}

/** The server's answer says the token or the volunteer is gone (not a network or server failure). */
const refused = (error: unknown) => error instanceof ApiError && [401, 403, 404].includes(error.status);
/** Worth trying again: no answer (fetch's "fetch failed"), or the server's own trouble; not a refusal, nor a local failure (the config file). */
const transient = (error: unknown) =>
  error instanceof ApiError ? error.status >= 500 || error.status === 429 || error.status === 408 : error instanceof TypeError && error.message === "fetch failed";

/**
 * The identities of `count` browser slots for `server`, each slot held by this process until
 * it exits (a second `volunteer` running beside it takes the next free slots, so two processes
 * are two volunteers, as two `--instances` are): the ones the config keeps (checked with the
 * server, and linked to the signed-in account), new ones where there are none, saved back.
 * `name` renames them (slots past the first get " (2)", " (3)" …). Retries while the server
 * cannot be reached, calling `onRetry`, until `signal` aborts.
 */
export async function volunteerIdentities(
  env: CliEnv,
  server: string,
  { count, name, signal, onRetry }: { count: number; name?: string; signal: AbortSignal; onRetry: (error: string, inMs: number) => void },
): Promise<VolunteerIdentity[]> {
  const slots = await claimSlots(env, server, count);
  const delaysMs = [1000, 2000, 5000, 10_000];
  for (let attempt = 0; ; attempt++) {
    try {
      return await resolve(env, server, slots, name);
    } catch (error) {
      if (!transient(error) || signal.aborted) throw error;
      const inMs = delaysMs[Math.min(attempt, delaysMs.length - 1)]!;
      onRetry(describeError(error), inMs);
      await sleep(inMs, undefined, { signal }).catch(() => {});
      if (signal.aborted) throw error;
    }
  }
}

/**
 * Whether a slot file's holder is gone. A file with no pid yet is one another process has just
 * made and not yet written: held, unless it has stayed so for seconds.
 */
async function abandoned(path: string): Promise<boolean> {
  const text = await readFile(path, "utf8").catch(() => null);
  if (text === null) return true;
  const holder = Number(text.trim());
  if (Number.isInteger(holder) && holder > 0) return !processRuns(holder);
  const made = await stat(path).catch(() => null);
  return made === null || Date.now() - made.mtimeMs > 5000;
}

/**
 * The `count` lowest slots no running process holds: a slot is held by a file naming the
 * holder's pid (beside the config file), made exclusively, removed when this process exits;
 * one whose holder is gone (killed) is taken over.
 */
async function claimSlots(env: CliEnv, server: string, count: number): Promise<number[]> {
  const dir = join(dirname(env.configFile), "volunteer-slots");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const prefix = createHash("sha256").update(server).digest("hex").slice(0, 16);
  // Files of holders long gone (killed volunteers of any server) are swept, so none piles up.
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) && name.endsWith(".pid") && (await abandoned(join(dir, name)))) await rm(join(dir, name), { force: true });
  }
  const held: string[] = [];
  const slots: number[] = [];
  const take = async (path: string): Promise<boolean> => {
    for (let tries = 0; tries < 2; tries++) {
      try {
        await writeFile(path, String(process.pid), { flag: "wx", mode: 0o600 });
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        if (!(await abandoned(path))) return false;
        await rm(path, { force: true });
      }
    }
    return false;
  };
  for (let slot = 0; slots.length < count; slot++) {
    const path = join(dir, `${prefix}-${slot}.pid`);
    if (await take(path)) {
      held.push(path);
      slots.push(slot);
    }
  }
  process.once("exit", () => {
    for (const path of held) rmSync(path, { force: true });
  });
  return slots;
}

async function resolve(env: CliEnv, server: string, slots: number[], name: string | undefined): Promise<VolunteerIdentity[]> {
  const config: ConfigFile = await readConfig(env.configFile);
  const entry = config.servers[server];
  const credential = env.apiKey ?? entry?.token ?? null;
  const email = env.apiKey ? null : (entry?.email ?? null);
  const account = credential === null ? null : (email ?? "the API key's account");
  const anonymous = createClient({ baseUrl: server });
  const creator: Client | null = credential === null ? null : anonymous.withToken(credential);
  const stored = config.volunteers?.[server] ?? [];
  const identities: VolunteerIdentity[] = [];
  for (const slot of slots) {
    const wanted = name === undefined ? undefined : slot === 0 ? name : `${name} (${slot + 1})`;
    // One still under the host name it was given anonymously takes the account's default name when linked.
    const rename = wanted !== undefined ? "always" : "if-anonymous-default";
    identities.push(await resolveSlot(anonymous, creator, stored[slot] ?? undefined, wanted ?? defaultVolunteerName(email, slot), rename, defaultVolunteerName(null, slot), account));
  }
  // Only this process's slots are written: another process may hold (and write) the others.
  await updateConfig(env.configFile, (fresh) => {
    const kept = [...(fresh.volunteers?.[server] ?? [])];
    for (const [i, slot] of slots.entries()) {
      while (kept.length < slot) kept.push(null);
      const identity = identities[i]!;
      kept[slot] = { id: identity.id, token: identity.token, name: identity.name };
    }
    return { ...fresh, volunteers: { ...fresh.volunteers, [server]: kept } };
  });
  return identities;
}

async function resolveSlot(
  anonymous: Client,
  creator: Client | null,
  kept: StoredVolunteer | undefined,
  name: string,
  rename: "always" | "if-anonymous-default",
  anonymousDefault: string,
  account: string | null,
): Promise<VolunteerIdentity> {
  let replaced: string | null = null;
  if (kept) {
    let figures: Awaited<ReturnType<Client["volunteerFigures"]>> | null = null;
    try {
      figures = await anonymous.withToken(kept.token).volunteerFigures();
    } catch (error) {
      if (!refused(error)) throw error;
      replaced = `the server refused volunteer ${kept.id}'s token (${describeError(error)})`;
    }
    if (figures) {
      let token = kept.token;
      let origin: VolunteerIdentity["origin"] = "kept";
      let mine = true;
      if (creator) {
        // Linking one that is the account's already changes nothing; an anonymous one becomes the account's.
        try {
          token = (await asCreator(creator.linkVolunteer(kept.token))).token;
          if (figures.userId === null) origin = "linked";
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 409)) throw error;
          replaced = `volunteer ${kept.id} computes for another account`;
          mine = false;
        }
      }
      if (mine) {
        const wanted = rename === "always" || (origin === "linked" && figures.name === anonymousDefault);
        const shown = wanted && figures.name !== name ? (await anonymous.withToken(token).renameVolunteer(name)).name : figures.name;
        const forAccount = creator !== null || figures.userId !== null;
        return { id: kept.id, token, name: shown, account: forAccount ? (account ?? "an account signed in earlier") : null, origin, replaced };
      }
    }
  }
  // Signed in: the new volunteer is the account's from the start (POST /api/volunteers with its credential).
  const made = await (creator ? asCreator(creator.createVolunteer(name)) : anonymous.createVolunteer(name));
  return { id: made.volunteer.id, token: made.token, name: made.volunteer.name, account: creator ? account : null, origin: "made", replaced };
}

/** A creator request whose 401 means the stored credential is stale: say what to do about it. */
async function asCreator<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      throw new ProblemError(`the server refused this machine's credential (${describeError(error)}): \`crowdcompute login\` again, or \`crowdcompute logout\` to volunteer anonymously`);
    }
    throw error;
  }
}
