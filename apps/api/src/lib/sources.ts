// The network source a request counts under, for the bounds and rate limits per caller
// (docs/architecture.md, "Bounds on what one caller holds"): the client's address, seen through
// trusted proxies, and an IPv6 address as its /64.
import type { AppContext } from "./context.ts";

/**
 * The network source a request counts under: the address the runtime saw (the socket's on
 * Node, Cloudflare's on Workers) or, when that is a trusted proxy (TRUSTED_PROXIES), the
 * nearest address in X-Forwarded-For that is not one; as its /64 for IPv6 (`sourceOf`).
 * "unknown" where the runtime knows no address (app.request in tests).
 */
export function networkSource(c: AppContext): string {
  const ip = c.var.deps.clientIp(c);
  return ip === null ? "unknown" : sourceOf(ip);
}

/** `clientIp` of a runtime, seen through the trusted proxies of `env` (see `networkSource`). */
export function throughProxies(clientIp: (c: AppContext) => string | null, trusted: readonly string[]): (c: AppContext) => string | null {
  if (trusted.length === 0) return clientIp;
  const isTrusted = (address: string) =>
    trusted.includes(
      address
        .trim()
        .toLowerCase()
        .replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, ""),
    );
  return (c) => {
    const peer = clientIp(c);
    if (peer === null || !isTrusted(peer)) return peer;
    const forwarded = (c.req.header("x-forwarded-for") ?? "")
      .split(",")
      .map((a) => a.trim())
      .filter(Boolean);
    // The proxies append: the right-most address no trusted proxy added is the client's.
    for (let i = forwarded.length - 1; i >= 0; i--) if (!isTrusted(forwarded[i]!)) return forwarded[i]!;
    return peer;
  };
}

/**
 * The key a client address counts under: an IPv4 address as it is (an IPv4-mapped IPv6
 * address as its IPv4), an IPv6 address as its /64 prefix, since a single host or customer
 * is usually given a whole /64 and could otherwise take a fresh address for every attempt.
 */
export function sourceOf(ip: string): string {
  const address = ip.trim().toLowerCase().replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":").flatMap((g) => (g.includes(".") ? ["0", "0"] : [g])));
  const [head = "", tail] = address.split("::");
  const groups = tail === undefined ? groupsOf(head) : [...groupsOf(head), ...Array<string>(Math.max(0, 8 - groupsOf(head).length - groupsOf(tail).length)).fill("0"), ...groupsOf(tail)];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return address; // not an IPv6 address: counted as given
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}
