// Test support: the API as a real child process, resolved once it says it serves.
import { type ChildProcess, spawn } from "node:child_process";

export interface ServerProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
}

/** `node …args` (src/main.ts, or the bundle); rejects with its output if it exits before serving. */
export async function spawnServer(args: string[], { cwd, env }: { cwd: string; env: NodeJS.ProcessEnv }): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes("running at")) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}: ${output}`)));
  });
  return { child, output: () => output };
}

/** A JSON request to a server process at `api.base`; its JSON answer, or throws with the status and body. */
export async function callJson(api: { base: string }, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const response = await fetch(`${api.base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
