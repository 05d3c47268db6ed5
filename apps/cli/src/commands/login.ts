// `crowdcompute login` / `logout`: a creator credential kept in the user's config dir.
import { hostname } from "node:os";
import { createInterface } from "node:readline/promises";
import { ApiError, createClient } from "@crowdcompute/sdk";
import { type CliEnv, deleteConfigEntry, readConfig, writeConfig } from "../config.ts";
import { UsageError } from "../errors.ts";
import { printJson, safe } from "../output.ts";

export interface LoginOptions {
  email?: string;
  passwordStdin?: boolean;
  register?: boolean;
  json: boolean;
}

async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) text += String(chunk);
  return text.replace(/\r?\n$/, "");
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Reads a line from the terminal without echoing it. */
function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding("utf8");
  let value = "";
  return new Promise((resolve, reject) => {
    const finish = (error?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const character of chunk) {
        if (character === "\r" || character === "\n") return finish();
        if (character === "\u0003") return finish(new UsageError("cancelled"));
        if (character === "\u007f" || character === "\b") value = value.slice(0, -1);
        else value += character;
      }
    };
    stdin.on("data", onData);
  });
}

/** An email and password: from flags and stdin, or asked on the terminal. */
export async function readSignIn(options: { email?: string; passwordStdin?: boolean }): Promise<{ email: string; password: string }> {
  const interactive = process.stdin.isTTY === true;
  const email = options.email ?? (interactive && !options.passwordStdin ? await ask("Email: ") : undefined);
  if (!email) throw new UsageError("--email is required when stdin is not a terminal");
  let password: string;
  if (options.passwordStdin) password = await readStdin();
  else if (interactive) password = await askHidden("Password: ");
  else throw new UsageError("no terminal to ask for the password: pipe it with --password-stdin");
  if (!password) throw new UsageError("the password is empty");
  return { email, password };
}

export async function login(env: CliEnv, server: string, options: LoginOptions): Promise<number> {
  const { email, password } = await readSignIn(options);
  const client = createClient({ baseUrl: server });
  const session = options.register ? await client.register(email, password) : await client.login(email, password);
  // Store an API key, not the password or the 24-hour session token; a server without
  // API keys (404) gets the session token instead.
  let credential: { token: string; kind: "api-key" | "session" };
  try {
    const { key } = await client.withToken(session.token).createApiKey(`crowdcompute CLI on ${hostname()}`);
    credential = { token: key, kind: "api-key" };
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    credential = { token: session.token, kind: "session" };
  }
  const config = await readConfig(env.configFile);
  config.servers[server] = { ...credential, email: session.user.email };
  config.defaultServer = server;
  await writeConfig(env.configFile, config);
  if (options.json) printJson({ server, user: session.user, configFile: env.configFile });
  else
    console.log(
      `${options.register ? "Registered and signed in" : "Signed in"} to ${server} as ${safe(session.user.email)} (${safe(session.user.role)}); ${credential.kind === "api-key" ? "API key" : "session token (valid 24 h)"} saved in ${env.configFile}`,
    );
  return 0;
}

export async function logout(env: CliEnv, server: string, json: boolean): Promise<number> {
  const removed = await deleteConfigEntry(env.configFile, server);
  if (json) printJson({ server, removed });
  else console.log(removed ? `Signed out of ${server}` : `Not signed in to ${server}`);
  return 0;
}
