// The `crowdcompute` command: the only file that reads the environment and exits.
import { availableParallelism } from "node:os";
import { type ChunkStatus, type Client, createClient, type LifecycleAction } from "@crowdcompute/sdk";
import { Command, CommanderError, Option } from "commander";
import manifest from "../package.json" with { type: "json" };
import type { KeysAuth } from "./commands/keys.ts";
import type { CloneOptions } from "./commands/maintenance.ts";
import { type CliEnv, readCliEnv, resolveServer, resolveToken } from "./config.ts";
import { describeError, exitCodeOf, exitCodes, UsageError } from "./errors.ts";
import { paint } from "./output.ts";
import { integer, type TaskFlags, taskFlagFields, taskFlagOptions, taskSettingOptions } from "./task-flags.ts";

const serverOption = () => new Option("--server <url>", "the CrowdCompute server (default: $CROWDCOMPUTE_SERVER, the last `login`, or http://localhost:8787)");
const jsonOption = () => new Option("--json", "machine-readable JSON on stdout");

function buildProgram(env: CliEnv, setExitCode: (code: number) => void): Command {
  const creator = async (flags: { server?: string }): Promise<Client> => {
    const server = await resolveServer(env, flags.server);
    return createClient({ baseUrl: server, token: await resolveToken(env, server) });
  };

  const program = new Command("crowdcompute")
    .description("Lend this machine's browsers to a CrowdCompute server, or run tasks on one.")
    .version(manifest.version, "-V, --version", "print the version")
    .showHelpAfterError("(add --help for usage)")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(paint("red", text, process.stderr)) })
    .addHelpText(
      "after",
      `
Environment:
  CROWDCOMPUTE_SERVER    default server for every command
  CROWDCOMPUTE_API_KEY   creator credential (instead of \`crowdcompute login\`)
  CHROMIUM_PATH          the browser for \`volunteer\` and \`run\` (instead of --browser)

Exit codes: 0 ok, 1 the server refused or failed (or a watched or followed task did not end done, or
ended with failed chunks without --allow-failures), 2 a usage error (nothing was sent).`,
    );

  program
    .command("volunteer")
    .description("run headless Chromium volunteers on the server's volunteer page until Ctrl-C")
    .addOption(serverOption())
    .option("--threads <n>", "worker threads per browser (default: the page's, half the cores)", integer("--threads", 1, 64))
    .option("--cpu <percent>", "the share of each thread's time chunks may use, in steps of 10 (default 100)", integer("--cpu", 10, 100))
    .option("--instances <k>", "browsers to run", integer("--instances", 1, 64), 1)
    .option("--browser <path>", "Chromium or Chrome to use (default: detected, or $CHROMIUM_PATH)")
    .option("--webgpu", "let tasks that need WebGPU run here (enables Chromium's WebGPU)")
    .option("--show-console", "print what work code writes to its console (off: volunteers see none of it)")
    .option("--name <name>", "the volunteer's name on the leaderboard (default: \"alice's HOST\" when logged in as alice@…, else the host name); kept for later runs")
    .addOption(jsonOption())
    .action(async (flags: { server?: string; name?: string; threads?: number; cpu?: number; instances: number; browser?: string; webgpu?: boolean; showConsole?: boolean; json?: boolean }) => {
      const { locateChromium } = await import("./chromium.ts");
      const { volunteer } = await import("./commands/volunteer.ts");
      const server = await resolveServer(env, flags.server);
      const executablePath = locateChromium(flags.browser, env.chromiumPath);
      setExitCode(
        await volunteer({
          server,
          env,
          name: flags.name,
          threads: flags.threads,
          cpuPercent: flags.cpu,
          instances: flags.instances,
          executablePath,
          webgpu: flags.webgpu ?? false,
          showConsole: flags.showConsole ?? false,
          json: flags.json ?? false,
        }),
      );
    });

  program
    .command("login")
    .description("sign in (or --register) and keep the credential in your config dir (mode 0600)")
    .addOption(serverOption())
    .option("--email <email>", "account email (asked for on a terminal)")
    .option("--password-stdin", "read the password from stdin instead of asking")
    .option("--register", "create the account first")
    .addOption(jsonOption())
    .action(async (flags: { server?: string; email?: string; passwordStdin?: boolean; register?: boolean; json?: boolean }) => {
      const { login } = await import("./commands/login.ts");
      setExitCode(await login(env, await resolveServer(env, flags.server), { ...flags, json: flags.json ?? false }));
    });

  program
    .command("logout")
    .description("forget the credential stored for a server")
    .addOption(serverOption())
    .addOption(jsonOption())
    .action(async (flags: { server?: string; json?: boolean }) => {
      const { logout } = await import("./commands/login.ts");
      setExitCode(await logout(env, await resolveServer(env, flags.server), flags.json ?? false));
    });

  const inputOptions = (command: Command) =>
    command
      .option("--inputs <file>", "inputs: a JSON array (.json) or one JSON value per line (.ndjson)")
      .option("--range <start:end:step:size>", "inputs: chunks of `size` integers from start (inclusive) to end (exclusive)")
      .option("--wasm <file>", "a WebAssembly module (.wasm, or .wat text compiled here) for `ctx.wasm`")
      .option("--minify", "minify the bundled work code");

  const submitCommand = taskSettingOptions(
    inputOptions(
      program.command("submit").description("bundle a work function (with its imports) and create a task from it").argument("<work.js>", "an ES module whose default export is the work function"),
    ),
    { name: "the directory's name for a work.js, index.js or main.js, else the file's", memory: "256", start: "start it at once (default: a draft)" },
  )
    .option("--watch", "start it and follow its progress until it ends (exit 1 unless it ends done with no failed chunk)")
    .option("--allow-failures", "with --watch: failed chunks do not make the exit code 1")
    .addOption(serverOption())
    .addOption(jsonOption());
  taskFlagOptions(submitCommand).action(async (file: string, flags: Record<string, unknown> & TaskFlags & { server?: string; json?: boolean }) => {
    const { prepareTask, submit } = await import("./commands/submit.ts");
    const options = { ...flags, json: flags.json ?? false };
    // Everything is checked and bundled before credentials are looked at: a usage error always wins.
    const fields = taskFlagFields(flags);
    const prepared = await prepareTask(file, options);
    const newTask = { ...prepared, task: { ...prepared.task, ...fields } };
    setExitCode(await submit(await creator(flags), newTask, options));
  });

  program
    .command("status")
    .description("a task's progress (a bar on a terminal, plain lines when piped)")
    .argument("<id>", "task id")
    .option("-w, --watch", "follow it until it ends (exit 1 unless it ends done with no failed chunk)")
    .option("--allow-failures", "with --watch: failed chunks do not make the exit code 1")
    .option("--chunk <n>", "one chunk instead: its state, input, progress, error, votes and console output", integer("--chunk", 0, 2 ** 31 - 1))
    .addOption(serverOption())
    .addOption(jsonOption())
    .action(async (id: string, flags: { server?: string; watch?: boolean; allowFailures?: boolean; chunk?: number; json?: boolean }) => {
      const { showStatus, watchTask } = await import("./commands/tasks.ts");
      const client = await creator(flags);
      if (flags.chunk !== undefined) {
        const { showChunk } = await import("./commands/chunks.ts");
        return setExitCode(await showChunk(client, id, flags.chunk, flags.json ?? false));
      }
      setExitCode(flags.watch ? await watchTask(client, id, flags.json ?? false, { allowFailures: flags.allowFailures ?? false }) : await showStatus(client, id, flags.json ?? false));
    });

  program
    .command("results")
    .description("download a task's final results to stdout, streamed (progress on stderr); --follow: each result as it is decided, until the task ends")
    .argument("<id>", "task id")
    .addOption(new Option("--format <format>", "ndjson or csv").choices(["ndjson", "csv"]).default("ndjson"))
    .option("-f, --follow", "stream every result as it is decided (not in index order), each line with its `cursor`, until the task ends; exit 1 when chunks failed")
    .option("--after <cursor>", "with --follow: resume after the line that carried this cursor")
    .option("--allow-failures", "with --follow: failed chunks do not make the exit code 1")
    .option("-q, --quiet", "no progress on stderr")
    .addOption(serverOption())
    .action(async (id: string, flags: { server?: string; format: "ndjson" | "csv"; follow?: boolean; after?: string; allowFailures?: boolean; quiet?: boolean }) => {
      const { downloadResults, followResults } = await import("./commands/results.ts");
      if (flags.after !== undefined && !flags.follow) throw new UsageError("--after resumes a follow: add --follow");
      if (flags.after !== undefined && !/^\d{1,20}-\d{1,10}$/.test(flags.after)) throw new UsageError("--after takes the `cursor` of a followed line, e.g. 1234-56");
      const quiet = flags.quiet ?? false;
      setExitCode(
        flags.follow
          ? await followResults(await creator(flags), id, { format: flags.format, quiet, allowFailures: flags.allowFailures ?? false, ...(flags.after !== undefined ? { after: flags.after } : {}) })
          : await downloadResults(await creator(flags), id, flags.format, quiet),
      );
    });

  program
    .command("chunks")
    .description("a task's chunks in index order, with attempts, votes and errors (--status to pick one kind)")
    .argument("<id>", "task id")
    .addOption(new Option("--status <status>", "only chunks in this state").choices(["pending", "leased", "voting", "done", "failed"]))
    .option("--limit <n>", "how many", integer("--limit", 1), 100)
    .option("--all", "every one")
    .addOption(serverOption())
    .addOption(new Option("--json", "one JSON object a line on stdout"))
    .action(async (id: string, flags: { server?: string; status?: ChunkStatus; limit: number; all?: boolean; json?: boolean }) => {
      const { listChunks } = await import("./commands/chunks.ts");
      setExitCode(await listChunks(await creator(flags), id, { ...(flags.status ? { status: flags.status } : {}), limit: flags.all ? null : flags.limit, json: flags.json ?? false }));
    });

  const clone = program
    .command("clone")
    .description("a new draft with a task's inputs and options, changed by the flags given (new code: --code work.js)")
    .argument("<id>", "task id")
    .option("--code <work.js>", "new work code, bundled as `submit` does")
    .option("--minify", "minify the bundled work code");
  taskSettingOptions(clone, { name: "the task's", memory: "the task's", start: "start the clone at once" })
    .option("--watch", "start the clone and follow its progress until it ends (exit 1 unless it ends done with no failed chunk)")
    .option("--allow-failures", "with --watch: failed chunks do not make the exit code 1")
    .addOption(serverOption())
    .addOption(jsonOption());
  taskFlagOptions(clone).action(async (id: string, flags: CloneOptions & { server?: string; watch?: boolean; allowFailures?: boolean }) => {
    const { cloneTask, prepareClone } = await import("./commands/maintenance.ts");
    const changes = await prepareClone({ ...flags, json: flags.json ?? false });
    setExitCode(
      await cloneTask(await creator(flags), id, changes, { start: flags.start ?? false, watch: flags.watch ?? false, allowFailures: flags.allowFailures ?? false, json: flags.json ?? false }),
    );
  });

  program
    .command("retry-failed")
    .description("give every failed chunk of a task a fresh set of attempts (a finished task runs again)")
    .argument("<id>", "task id")
    .addOption(serverOption())
    .addOption(jsonOption())
    .action(async (id: string, flags: { server?: string; json?: boolean }) => {
      const { retryFailed } = await import("./commands/maintenance.ts");
      setExitCode(await retryFailed(await creator(flags), id, flags.json ?? false));
    });

  program
    .command("delete")
    .description("delete a task with its inputs and results, for good")
    .argument("<id>", "task id")
    .addOption(serverOption())
    .addOption(jsonOption())
    .action(async (id: string, flags: { server?: string; json?: boolean }) => {
      const { deleteTask } = await import("./commands/maintenance.ts");
      setExitCode(await deleteTask(await creator(flags), id, flags.json ?? false));
    });

  const keys = program.command("keys").description("your API keys: list, create, revoke (signs in with your password: keys cannot manage keys)");
  const keysAuth = (command: Command) =>
    command
      .option("--email <email>", "account email (default: the one `login` stored)")
      .option("--password-stdin", "read the password from stdin instead of asking")
      .addOption(serverOption())
      .addOption(jsonOption());
  keysAuth(keys.command("list").description("every API key, revoked ones too")).action(async (flags: KeysAuth & { server?: string; json?: boolean }) => {
    const { listKeys, sessionClient } = await import("./commands/keys.ts");
    const server = await resolveServer(env, flags.server);
    setExitCode(await listKeys(await sessionClient(env, server, flags), flags.json ?? false));
  });
  keysAuth(keys.command("create").description("a new API key, printed once on stdout").option("--name <name>", "what the key is for")).action(
    async (flags: KeysAuth & { name?: string; server?: string; json?: boolean }) => {
      const { createKey, sessionClient } = await import("./commands/keys.ts");
      const server = await resolveServer(env, flags.server);
      setExitCode(await createKey(await sessionClient(env, server, flags), flags.name, flags.json ?? false));
    },
  );
  keysAuth(keys.command("revoke").description("revoke an API key: it stops working at once").argument("<key-id>", "the key's id (from `keys list`)")).action(
    async (id: string, flags: KeysAuth & { server?: string; json?: boolean }) => {
      const { revokeKey, sessionClient } = await import("./commands/keys.ts");
      const server = await resolveServer(env, flags.server);
      setExitCode(await revokeKey(await sessionClient(env, server, flags), id, flags.json ?? false));
    },
  );

  const actions: [LifecycleAction, string][] = [
    ["start", "start a draft task"],
    ["pause", "stop handing out a task's chunks (those running finish)"],
    ["resume", "hand out a paused task's chunks again"],
    ["cancel", "cancel a task for good"],
  ];
  for (const [action, description] of actions) {
    program
      .command(action)
      .description(description)
      .argument("<id>", "task id")
      .addOption(serverOption())
      .addOption(jsonOption())
      .action(async (id: string, flags: { server?: string; json?: boolean }) => {
        const { lifecycle } = await import("./commands/tasks.ts");
        setExitCode(await lifecycle(await creator(flags), id, action, flags.json ?? false));
      });
  }

  program
    .command("tasks")
    .description("your tasks, newest first")
    .option("--limit <n>", "how many", integer("--limit", 1, 10_000), 20)
    .option("--all", "every task")
    .addOption(serverOption())
    .addOption(jsonOption())
    .action(async (flags: { server?: string; limit: number; all?: boolean; json?: boolean }) => {
      const { listTasks } = await import("./commands/tasks.ts");
      setExitCode(await listTasks(await creator(flags), { limit: flags.limit, all: flags.all ?? false, json: flags.json ?? false }));
    });

  inputOptions(
    program
      .command("run")
      .description("dry run: compute chunks in local headless Chromium, in the same sandbox volunteers use; prints results like `results`")
      .argument("<work.js>", "an ES module whose default export is the work function"),
  )
    .option("--limit <n>", "only the first n chunks", integer("--limit", 1))
    .option("--threads <n>", "worker threads", integer("--threads", 1, 64), Math.min(4, availableParallelism()))
    .option("--timeout <ms>", "per-chunk timeout in ms", integer("--timeout", 100, 3_600_000), 60_000)
    .option("--memory <mib>", "each worker's memory budget in MiB, as `submit --memory` gives it to volunteers", integer("--memory", 16, 4096), 256)
    .addOption(new Option("--format <format>", "ndjson or csv").choices(["ndjson", "csv"]).default("ndjson"))
    .option("--browser <path>", "Chromium or Chrome to use (default: detected, or $CHROMIUM_PATH)")
    .option("--webgpu", "enable Chromium's WebGPU")
    .action(
      async (
        file: string,
        flags: {
          inputs?: string;
          range?: string;
          wasm?: string;
          limit?: number;
          threads: number;
          timeout: number;
          memory: number;
          format: "ndjson" | "csv";
          browser?: string;
          minify?: boolean;
          webgpu?: boolean;
        },
      ) => {
        const { locateChromium } = await import("./chromium.ts");
        const { runLocally } = await import("./commands/run.ts");
        const executablePath = locateChromium(flags.browser, env.chromiumPath);
        setExitCode(await runLocally(file, { ...flags, executablePath }));
      },
    );

  return program;
}

async function main(): Promise<never> {
  // `crowdcompute results ID | head`: the reader left, which is not an error of ours.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(exitCodes.ok);
    throw error;
  });
  let code: number = exitCodes.ok;
  const program = buildProgram(readCliEnv(process.env), (value) => (code = value));
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (or the help) already.
      process.exit(error.exitCode === 0 ? exitCodes.ok : exitCodes.usage);
    }
    process.stderr.write(`${paint("red", "error:", process.stderr)} ${describeError(error)}\n`);
    process.exit(exitCodeOf(error));
  }
  process.exit(code);
}

await main();
