// Node-only: creates an embedded database directory, migrates it, and exits: run as a child
// process by createPgliteDb so that the memory initdb and the first migrations grow leaves
// with the process (see pglite.ts).
import { migratePgliteDb } from "./migrate.ts";
import { createPgliteDb } from "./pglite.ts";

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: pglite-init.ts <data dir>");
const handle = await createPgliteDb(dataDir, { initialized: true });
await migratePgliteDb(handle);
await handle.close();
