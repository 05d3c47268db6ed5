import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ShapedStatement } from "../src/db.ts";
import { openTestDb, type TestDb, testBackends } from "../testing/testing.ts";

describe.each(testBackends())("a shaped statement on %s", (backend) => {
  let testDb: TestDb;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(async () => testDb?.dispose());

  it("runs with each call's values, not the first call's", async () => {
    const statement = new ShapedStatement<{ a: number; b: string | null }>((v) => sql`SELECT ${v("a")}::int * 2 AS twice, coalesce(${v("b")}::text, 'none') AS b, ${v("a")}::int AS again`);
    expect(await statement.rows(testDb.handle.db, { a: 2, b: "x" })).toEqual([{ twice: 4, b: "x", again: 2 }]);
    expect(await statement.rows(testDb.handle.db, { a: 21, b: null })).toEqual([{ twice: 42, b: "none", again: 21 }]);
  });

  it("refuses a value built into its text where it is built once (a postgres.js pool), which every later call would reuse", async () => {
    const fixed = 7;
    const statement = new ShapedStatement<{ a: number }>((v) => sql`SELECT ${v("a")}::int + ${fixed}::int AS sum`);
    const run = statement.rows(testDb.handle.db, { a: 1 });
    // PGlite builds it with its values every time: nothing is reused there.
    if (backend === "postgres") await expect(run).rejects.toThrow(/not one of its placeholders/);
    else expect(await run).toEqual([{ sum: 8 }]);
  });
});
