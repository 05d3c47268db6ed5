// The abuse bench's HTTP client (bench/abuse/harness.ts): the abuse tests' raw requests, one on
// a connection of its own, sent from the attacker's network source unless a request names
// another (through the API's trusted loopback proxy).
import { type RawRequest, type RawResponse, rawRequest as rawRequestFrom } from "../../apps/api/test/raw-http.ts";

export type { RawRequest, RawResponse };

/** The network source the normal clients send as, and the one an attacker sends as by default. */
export const normalSource = "198.51.100.10";
export const attackerSource = "203.0.113.66";

/** A connection reset, a refused connection, an abort or a timeout resolve as status 0: an attack counts them, it does not stop on them. */
export function rawRequest(base: string, request: RawRequest): Promise<RawResponse> {
  return rawRequestFrom(base, { ...request, source: request.source ?? attackerSource });
}
