// The network source an anonymous volunteer's leases count under (docs/architecture.md,
// "Bounds on what one volunteer holds"): `networkSource`, the address the runtime saw or the
// one a trusted proxy forwarded (TRUSTED_PROXIES), an IPv6 address by its /64. An account's
// volunteers are bounded per volunteer only: null.
import type { AppContext } from "../../lib/context.ts";
import { networkSource } from "../../lib/sources.ts";
import type { TokenClaims } from "../../lib/tokens.ts";

export function leaseSource(c: AppContext, claims: TokenClaims): string | null {
  return claims.uid ? null : networkSource(c);
}
