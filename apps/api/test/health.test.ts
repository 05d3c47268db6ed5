import { startDisposablePostgres } from "@crowdcompute/db/disposable-postgres";
import { migratePostgresUrl } from "@crowdcompute/db/migrate";
import { createPgliteDb } from "@crowdcompute/db/pglite";
import { createPostgresDb } from "@crowdcompute/db/postgres";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/create-app.ts";
import { testEnv } from "./harness.ts";

async function health(app: ReturnType<typeof createApp>) {
  const response = await app.request("/api/health");
  return { status: response.status, type: response.headers.get("content-type"), body: await response.json() };
}

describe("health when the database stops", () => {
  it("answers 503 problem+json once the embedded database is closed", async () => {
    const handle = await createPgliteDb();
    const app = createApp({ db: handle.db, env: testEnv() });
    expect(await health(app)).toMatchObject({ status: 200, body: { status: "ok", db: "ok" } });
    await handle.close();
    const down = await health(app);
    expect(down.status).toBe(503);
    expect(down.type).toBe("application/problem+json");
    expect(down.body.detail).toMatch(/database unreachable/);
  });

  it("answers 503 while a real Postgres server is stopped, and 200 again once it is back", async () => {
    const server = await startDisposablePostgres();
    try {
      await migratePostgresUrl(server.url);
      const handle = createPostgresDb(server.url);
      const app = createApp({ db: handle.db, env: testEnv({ embedded: false }) });
      expect((await health(app)).status).toBe(200);
      server.stop("immediate");
      const down = await health(app);
      expect(down.status).toBe(503);
      expect(down.type).toBe("application/problem+json");
      server.start();
      expect((await health(app)).status).toBe(200);
      await handle.close();
    } finally {
      server.destroy();
    }
  });
});
