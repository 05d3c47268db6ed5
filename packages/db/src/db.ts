import { Placeholder, type SQL, sql } from "drizzle-orm";
import { type PgDatabase, PgDialect, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema.ts";

/** A drizzle database over either driver (postgres.js or PGlite), or a transaction of one. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** Runs a statement as a named prepared statement of its connection (parsed and planned once). */
export type PreparedRunner = (text: string, params: unknown[]) => Promise<unknown[]>;

const dialect = new PgDialect();

/**
 * What a database given a handle (handle.ts) carries in this process; its transactions
 * carry nothing. Its identity keys what this process keeps per database (the dispatch cache,
 * dispatch/dispatch-cache.ts).
 */
export type ProcessState = { readonly prepared: PreparedRunner | null };
const processState = Symbol("crowdcompute db state");
type WithState = Db & { [processState]?: ProcessState };

/**
 * Gives a database its driver opened what it carries in this process (`createDbHandle`):
 * `prepared`, where the driver has one, for `preparedRows` to run statements prepared on it.
 */
export function attachProcessState(db: Db, prepared: PreparedRunner | null): void {
  (db as WithState)[processState] = { prepared };
}

/** What `db` carries in this process (see `ProcessState`); undefined for a transaction. */
export function processStateOf(db: Db): ProcessState | undefined {
  return (db as WithState)[processState];
}

/**
 * Runs raw SQL and returns its rows. postgres.js answers `execute` with an array of rows,
 * PGlite with `{ rows }`: callers should not care which.
 */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const out: unknown = await db.execute(query);
  if (Array.isArray(out)) return out as T[];
  return ((out as { rows?: T[] }).rows ?? []) as T[];
}

/**
 * `queryRows` for the hot path (lease, submit, expire, heartbeat): on a postgres.js pool the
 * statement is prepared, parsed and planned once per connection. drizzle's `execute` sends
 * each one unnamed, so Postgres planned every lease and submit CTE anew: measured, 2.7 ms of
 * server CPU per lease + submit of 8 chunks, of which 0.5 ms was execution. Only for
 * statements that find their rows by key whatever the statistics say: a generic plan is
 * made once, from the statistics of the moment (this CI's server never refreshes them), and
 * a results download prepared this way nested-looped over a growing table (100k lines: 28 s).
 */
export async function preparedRows<T>(db: Db, query: SQL): Promise<T[]> {
  const prepared = (db as WithState)[processState]?.prepared;
  if (!prepared) return queryRows<T>(db, query);
  const { sql: text, params } = dialect.sqlToQuery(query);
  return (await prepared(text, params)) as T[];
}

const retryableCodes = new Set(["40P01", "40001"]);

/**
 * Retries a statement that lost a deadlock or serialization race. Hot-path statements lock
 * rows in a fixed order, so this is a safety net, not the plan.
 */
export async function retryOnDeadlockOrSerialization<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: string; cause?: { code?: string } }).code ?? (error as { cause?: { code?: string } }).cause?.code;
      if (attempt >= attempts || !code || !retryableCodes.has(code)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
}

/** A value of a shaped statement (`ShapedStatement`): itself where the SQL is built for one run, a placeholder where it is built once. */
type ValueOf<V> = <K extends keyof V & string>(name: K) => unknown;

/**
 * A hot statement whose text depends on its shape only: on a postgres.js pool it is built
 * with drizzle once, as text with placeholders, and afterwards runs from its values alone
 * (prepared, as `preparedRows`). Building the lease statement's SQL tree and text on every
 * call was ~14 % of the API's CPU and much of its garbage while 10,000 waiting volunteers
 * got their first blocks (docs/architecture.md, "Dispatch", waiting volunteers). Elsewhere
 * (PGlite, a transaction) it is built with its values each time, as `queryRows` runs it.
 */
export class ShapedStatement<V extends Record<string, unknown>> {
  private compiled: { text: string; names: (keyof V & string)[] } | null = null;
  private readonly build: (value: ValueOf<V>) => SQL;

  /** `build` makes the statement from `value(name)`, and from nothing else that varies. */
  constructor(build: (value: ValueOf<V>) => SQL) {
    this.build = build;
  }

  async rows<T>(db: Db, values: V): Promise<T[]> {
    const prepared = (db as WithState)[processState]?.prepared;
    if (!prepared) {
      const withValues = this.build((name) => values[name]);
      return queryRows<T>(db, withValues);
    }
    this.compiled ??= this.compile();
    const { text, names } = this.compiled;
    const params: unknown[] = new Array(names.length);
    for (let i = 0; i < names.length; i++) params[i] = values[names[i]!];
    return (await prepared(text, params)) as T[];
  }

  private compile() {
    const { sql: text, params } = dialect.sqlToQuery(this.build((name) => sql.placeholder(name)));
    const names = params.map((param) => {
      // A value built into the statement itself would be the first call's for every later one.
      if (!(param instanceof Placeholder)) throw new Error(`a shaped statement holds a value that is not one of its placeholders: ${String(param)}`);
      return param.name as keyof V & string;
    });
    return { text, names };
  }
}
