// `npm run migrate`: migrates DATABASE_URL, or the embedded database under ./data.

import { lockDataDir } from "./data-dir.ts";
import { migratePgliteDb, migratePostgresUrl } from "./migrate.ts";
import { createPgliteDb } from "./pglite.ts";

const url = process.env.DATABASE_URL;
if (url) {
  await migratePostgresUrl(url);
  console.log("migrated", url.replace(/\/\/[^@]*@/, "//***@"));
} else {
  const dataDir = process.env.DATA_DIR ?? "./data";
  const release = await lockDataDir(dataDir);
  const handle = await createPgliteDb(`${dataDir}/pglite`);
  await migratePgliteDb(handle);
  await handle.close();
  await release();
  console.log("migrated the embedded database in", dataDir);
}
