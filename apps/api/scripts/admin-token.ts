// `npm run admin-token`: the token that makes ADMIN_EMAIL the first admin of a server install,
// from JWT_SECRET and ADMIN_EMAIL (the Node server prints it at start too; a Workers deploy
// has no start log). See lib/admin-bootstrap.ts.
import { parseEnv } from "../src/env.ts";
import { adminBootstrapToken } from "../src/lib/admin-bootstrap.ts";

try {
  const env = parseEnv(process.env);
  if (!env.jwtSecret || !env.adminEmail) throw new Error("set JWT_SECRET and ADMIN_EMAIL, as the server has them");
  console.log(await adminBootstrapToken(env.jwtSecret, env.adminEmail));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
}
