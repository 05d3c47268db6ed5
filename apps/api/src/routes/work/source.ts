// The network source an anonymous volunteer's leases count under (docs/architecture.md,
// "Bounds on what one volunteer holds"): the address the runtime saw for the request (the
// socket's on Node, Cloudflare's on Workers; `deps.clientIp`, which a trusted proxy's
// forwarded address replaces where one is configured), as `sourceOf` keys it (an IPv6
// address by its /64). An account's volunteers are bounded per volunteer only: null.
import type { AppContext } from "../../lib/context.ts";
import { sourceOf } from "../../lib/limits.ts";
import type { TokenClaims } from "../../lib/tokens.ts";

export function leaseSource(c: AppContext, claims: TokenClaims): string | null {
  if (claims.uid) return null;
  const ip = c.var.deps.clientIp(c);
  return ip === null ? "unknown" : sourceOf(ip);
}
