// Node-only: the embedded database is PGlite, Postgres running inside one process, so two
// processes must never open its directory at once.
//
// The lock is a Unix domain socket listening at `<dir>/lock` (a named pipe on Windows): the
// kernel closes it when its holder dies, however it dies, so a holder is alive exactly when
// the socket accepts a connection. A pid file could not tell: after a crash its pid could
// belong to a zombie or to an unrelated process, and the directory stayed locked.
import { createHash, randomBytes } from "node:crypto";
import { linkSync, lstatSync, mkdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join, relative } from "node:path";

/** What a holder tells whoever connects: enough to say who holds the directory. */
interface Holder {
  pid: number;
  since: string;
  /** Which process (a random id) and which of its sockets: see `lockDataDir`. */
  nonce: string;
  socket: number;
}

// sockaddr_un holds 108 bytes on Linux and 104 on macOS, the terminating NUL included.
const maxSocketPath = process.platform === "darwin" ? 103 : 107;

/** Where the socket is bound: a path short enough for sockaddr_un, or the named pipe. */
function socketAddress(dir: string): { path: string; pipe: boolean } {
  if (process.platform === "win32") {
    // A named pipe is gone when its last handle closes: there is no file to take over.
    const id = createHash("sha256").update(realpathSync(dir).toLowerCase()).digest("hex").slice(0, 32);
    return { path: `\\\\?\\pipe\\crowdcompute-data-${id}`, pipe: true };
  }
  const absolute = join(realpathSync(dir), "lock");
  if (Buffer.byteLength(absolute) <= maxSocketPath) return { path: absolute, pipe: false };
  const fromHere = relative(process.cwd(), absolute); // the same file, by a shorter name
  if (Buffer.byteLength(fromHere) <= maxSocketPath) return { path: fromHere, pipe: false };
  throw new Error(`cannot lock ${dir}: its path is too long for a Unix socket (${absolute}); use a shorter DATA_DIR`);
}

type Answer = { holder: Holder } | { alive: true } | { code: string };

/**
 * Who holds `path`: its greeting; `alive` when something accepted the connection but said
 * nothing we understand in time (a holder too busy to answer is still alive); else the error:
 * ECONNREFUSED for a dead holder's socket (or a file that is no socket), ECONNRESET for one
 * whose holder is dying as we ask (a killed process keeps its sockets until its last thread ends).
 */
function ask(path: string): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let text = "";
    let connected = false;
    socket.setEncoding("utf8");
    socket.on("connect", () => {
      connected = true;
      socket.setTimeout(2_000, () => {
        socket.destroy();
        resolve({ alive: true });
      });
    });
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => {
      try {
        resolve({ holder: JSON.parse(text) as Holder });
      } catch {
        resolve(text === "" ? { code: "ECONNRESET" } : { alive: true });
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => resolve({ code: connected ? "ECONNRESET" : (error.code ?? "EUNKNOWN") }));
  });
}

function listen(server: Server, path: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (error: NodeJS.ErrnoException) => resolve(error);
    server.once("error", onError);
    server.listen(path, () => {
      server.off("error", onError);
      resolve(null);
    });
  });
}

const inodeOf = (path: string) => {
  try {
    return lstatSync(path).ino;
  } catch {
    return null;
  }
};

/**
 * Removes the dead socket (or old pid file) at `path` seen as inode `ino`, and only that one:
 * it is renamed aside first, so a live socket bound there since by another starting process
 * is put back rather than deleted.
 */
function takeOver(path: string, ino: number): void {
  const aside = `${path}.stale-${randomBytes(6).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // gone already: someone else took it over
  }
  if (inodeOf(aside) === ino) {
    rmSync(aside, { force: true });
    return;
  }
  try {
    linkSync(aside, path); // not ours to remove: put it back
  } catch {
    // Its place was taken meanwhile; the next attempt will find whoever holds it now.
  }
  rmSync(aside, { force: true });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * On Linux, processes starting on one directory take their turns: the check of a dead socket
 * and its removal are two steps, and between them another starter could bind a live socket
 * (whose inode may even reuse the dead one's number). The turn is an abstract-namespace
 * socket named after the directory's device and inode: binding it is atomic, and the kernel
 * frees it when its process dies, like the lock itself. Elsewhere there is no such name, and
 * two processes starting on one dead holder's socket within the same few microseconds could
 * both take it.
 */
async function takeTurn(dir: string): Promise<Server | null> {
  if (process.platform !== "linux") return null;
  const { dev, ino } = statSync(dir);
  const name = `\0crowdcompute-data-dir-${dev}-${ino}`;
  for (let i = 0; i < 100; i++) {
    const server = createServer((socket) => socket.destroy());
    const error = await listen(server, name);
    if (!error) return server.unref();
    if (error.code !== "EADDRINUSE") return null; // no abstract sockets here after all: go without
    await pause(100); // another starter's turn takes milliseconds
  }
  throw new Error(`could not lock ${dir}: other processes keep starting on it`);
}

/**
 * Takes the directory's lock: binds the socket `<dir>/lock` and answers each connection with
 * who holds it. A socket left by a holder that died refuses connections and is taken over; a
 * live holder makes this throw, naming its pid. Returns the release (closing the socket
 * removes it). The socket does not keep the process alive.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  const turn = await takeTurn(dir);
  try {
    return await bindLock(dir);
  } finally {
    turn?.close();
  }
}

/**
 * Binds the lock socket where the path is free (a dead holder's socket removed first), then
 * asks the path who holds it. Without turns (see `takeTurn`), starters racing could move each
 * other's sockets: a socket of ours that lost is then never closed (closing unlinks the path,
 * which names the winner's socket by then) but stays open, unreferenced, until the process ends.
 */
async function bindLock(dir: string): Promise<() => Promise<void>> {
  const { path, pipe } = socketAddress(dir);
  const nonce = randomBytes(16).toString("hex");
  const since = new Date().toISOString();
  const mine: Server[] = [];
  const inUse = (holder: Holder) => new Error(`${dir} is in use by process ${holder.pid} (since ${holder.since}); stop it first (the embedded database allows one process).`);
  const hold = (server: Server) => () => new Promise<void>((resolve) => server.close(() => resolve()));
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await ask(path);
    if ("holder" in answer) {
      // One of our own sockets, put back at the path by a process that took it for a dead one's.
      if (answer.holder.nonce === nonce && mine[answer.holder.socket]) return hold(mine[answer.holder.socket]!);
      throw inUse(answer.holder);
    }
    if ("alive" in answer) throw new Error(`${dir} is in use by a live process that did not say which (it holds ${path}); stop it first.`);
    if (answer.code === "ECONNRESET") {
      await pause(100); // its holder is going away as we ask (up to 5 s of these): ask again
      continue;
    }
    if (answer.code === "ECONNREFUSED") {
      const ino = pipe ? null : inodeOf(path);
      // Asked again with the inode in hand, so that only the dead socket seen here is removed.
      const again = await ask(path);
      if (ino !== null && "code" in again && again.code === "ECONNREFUSED") takeOver(path, ino);
      continue;
    }
    if (answer.code !== "ENOENT") throw new Error(`cannot lock ${dir}: ${answer.code} connecting to ${path}`);
    const index = mine.length;
    const server = createServer((socket) => {
      socket.on("error", () => {}); // a prober that hangs up early is no concern of the holder
      socket.end(JSON.stringify({ pid: process.pid, since, nonce, socket: index } satisfies Holder));
    });
    mine.push(server);
    const error = await listen(server, path);
    if (error && error.code !== "EADDRINUSE") throw new Error(`cannot lock ${dir}: ${error.message}`);
    if (!error) server.unref();
    // The next turn asks the path who holds it: this socket, or another bound first or since.
  }
  throw new Error(`could not lock ${dir}: other processes keep taking it`);
}
