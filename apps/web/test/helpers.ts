// Shared by the browser tests: a real server on free ports over a fresh database, and polling.
import { parseEnv } from "@crowdcompute/api/env";
import { startServer, type RunningServer } from "@crowdcompute/api/node-server";
import { openTestDb, testBackends, type TestDb } from "@crowdcompute/db/testing";

/** One database is enough for a browser test: the real server when there is one. */
export const browserTestBackend = testBackends().at(-1)!;

/** The Node entry's server, in process, on free ports, over a fresh database of `browserTestBackend`. */
export async function startTestServer(env: Record<string, string> = {}): Promise<{ server: RunningServer; testDb: TestDb; close(): Promise<void> }> {
  const testDb = await openTestDb(browserTestBackend);
  const parsed = parseEnv({ PORT: "0", ...env });
  const server = await startServer({ db: testDb.handle.db, env: { ...parsed, jwtSecret: "browser-test-secret-browser-test-secret", embedded: true } });
  return {
    server,
    testDb,
    close: async () => {
      await server.close();
      await testDb.dispose();
    },
  };
}

/** Polls `probe` every 100 ms until it gives a truthy value; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
