// `npm run dev:workers`: the Workers entry under `wrangler dev` on PORT against DATABASE_URL
// (migrated first: Workers run no migrations). Offline: no metrics are sent.
import { migratePostgresUrl } from "@crowdcompute/db/migrate";
import { parseEnv } from "../src/env.ts";
import { startWranglerDev } from "../src/node/wrangler-dev.ts";

const env = parseEnv(process.env);
if (!env.databaseUrl || !env.jwtSecret) {
  console.error("dev:workers needs DATABASE_URL (a Postgres server) and JWT_SECRET (32+ characters)");
  process.exit(1);
}
await migratePostgresUrl(env.databaseUrl);
const vars: Record<string, string> = {};
for (const [key, value] of Object.entries(process.env)) {
  if (
    value &&
    /^(DATABASE_URL|JWT_SECRET|PUBLIC_URL|SANDBOX_ORIGIN|ADMIN_EMAIL|REQUIRE_CREATOR_APPROVAL|LEASE_GRACE_MS|IDLE_RETRY_MS|LOGIN_LIMIT_.*|REGISTER_LIMIT_PER_IP|VOLUNTEER_MINT_.*)$/.test(key)
  )
    vars[key] = value;
}
const dev = await startWranglerDev({ port: env.port, vars, stdio: "inherit" });
console.log(`CrowdCompute API on Workers (wrangler dev) at ${dev.url}`);
const stop = async () => {
  await dev.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
