// `crowdcompute keys list|create|revoke`: a creator's API keys. The server lets only a signed-in
// session manage keys (a leaked key cannot mint successors), so these sign in with the
// account's password (asked, or --password-stdin), unless the stored credential is a session.
import { type ApiKey, type Client, createClient } from "@crowdcompute/sdk";
import { type CliEnv, readConfig } from "../config.ts";
import { paint, printJson, safe } from "../output.ts";
import { readSignIn } from "./login.ts";

export interface KeysAuth {
  email?: string;
  passwordStdin?: boolean;
}

/** A client acting as a session of the account: the stored session, or a fresh sign-in (the stored email by default). */
export async function sessionClient(env: CliEnv, server: string, auth: KeysAuth): Promise<Client> {
  const stored = (await readConfig(env.configFile)).servers[server];
  if (stored?.kind === "session" && auth.email === undefined && !auth.passwordStdin) return createClient({ baseUrl: server, token: stored.token });
  const { email, password } = await readSignIn({ ...auth, email: auth.email ?? stored?.email });
  const anonymous = createClient({ baseUrl: server });
  return anonymous.withToken((await anonymous.login(email, password)).token);
}

const date = (iso: string | null) => (iso ? iso.slice(0, 19).replace("T", " ") : "-");

export async function listKeys(client: Client, json: boolean): Promise<number> {
  const keys = await client.listApiKeys();
  if (json) {
    printJson(keys);
    return 0;
  }
  if (keys.length === 0) {
    console.log("no API keys: make one with `crowdcompute keys create --name NAME`");
    return 0;
  }
  const header = ["ID", "PREFIX", "CREATED", "LAST USED", "REVOKED", "NAME"];
  const rows = keys.map((key: ApiKey) => [key.id, key.prefix, date(key.createdAt), date(key.lastUsedAt), date(key.revokedAt), safe(key.name)]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ");
  console.log(paint("bold", line(header)));
  for (const row of rows) console.log(row[4] === "-" ? line(row) : paint("gray", line(row)));
  return 0;
}

export async function createKey(client: Client, name: string | undefined, json: boolean): Promise<number> {
  const { key, apiKey } = await client.createApiKey(name);
  if (json) printJson({ key, apiKey });
  else {
    console.log(key);
    process.stderr.write(`API key ${apiKey.id} (${safe(apiKey.name)}): shown only now; use it as CROWDCOMPUTE_API_KEY\n`);
  }
  return 0;
}

export async function revokeKey(client: Client, id: string, json: boolean): Promise<number> {
  await client.revokeApiKey(id);
  if (json) printJson({ id, revoked: true });
  else console.log(`API key ${id} revoked: it stops working now, and so do the volunteer tokens made with it`);
  return 0;
}
