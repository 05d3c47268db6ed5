// The API checks its HS256 tokens itself, with the runtime's HMAC (lib/tokens.ts); jose signs
// them. Here both checkers see the same tokens, good and bad, and must agree.
import { createHmac } from "node:crypto";
import { errors, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createTokens } from "../src/lib/tokens.ts";

const secret = "tokens-test-secret-tokens-test-secret-0123";
const key = new TextEncoder().encode(secret);
const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const nodeHmac = (k: Uint8Array, data: Uint8Array) => createHmac("sha256", k).update(data).digest();
/** A token with this header and payload text, signed with HMAC-SHA-256 under `under`. */
const signedRaw = (header: unknown, payload: unknown, under = key) => {
  const signingInput = `${b64(header)}.${b64(payload)}`;
  return `${signingInput}.${createHmac("sha256", under).update(signingInput).digest("base64url")}`;
};

async function joseVerdict(token: string): Promise<string> {
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
    return `valid ${payload.sub}`;
  } catch (error) {
    return error instanceof errors.JWTExpired ? "expired" : "invalid";
  }
}

async function corpus(): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: "v1", role: "volunteer" };
  const good = await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("1h").sign(key);
  const [head, body, signature] = good.split(".") as [string, string, string];
  const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
  return {
    good,
    "no expiry": await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(key),
    expired: await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setIssuedAt(now - 7200)
      .setExpirationTime(now - 60)
      .sign(key),
    "expires this second": signedRaw({ alg: "HS256" }, { ...claims, exp: now }),
    "not before an hour from now": await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setNotBefore(now + 3600)
      .setExpirationTime("2h")
      .sign(key),
    "nbf passed": signedRaw({ alg: "HS256" }, { ...claims, nbf: now - 10, exp: now + 60 }),
    "exp a string": signedRaw({ alg: "HS256" }, { ...claims, exp: String(now + 60) }),
    "iat a string": signedRaw({ alg: "HS256" }, { ...claims, iat: "yesterday", exp: now + 60 }),
    "other secret": await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(`${secret}x`)),
    HS512: await new SignJWT(claims).setProtectedHeader({ alg: "HS512" }).setExpirationTime("1h").sign(key),
    "alg none": `${b64({ alg: "none" })}.${b64(claims)}.`,
    "crit header": signedRaw({ alg: "HS256", crit: ["exp"] }, { ...claims, exp: now + 60 }),
    "b64 false": signedRaw({ alg: "HS256", b64: false, crit: ["b64"] }, { ...claims, exp: now + 60 }),
    "payload an array": signedRaw({ alg: "HS256" }, [1, 2]),
    "payload null": signedRaw({ alg: "HS256" }, null),
    "payload not JSON": signedRaw({ alg: "HS256" }, "not json"),
    "header not JSON": signedRaw("{alg:HS256", claims),
    "payload changed": `${head}.${flip(body, 3)}.${signature}`,
    "signature changed": `${head}.${body}.${flip(signature, 10)}`,
    "signature cut": `${head}.${body}.${signature.slice(0, -2)}`,
    "signature padded": `${head}.${body}.${signature}=`,
    "four parts": `${good}.${signature}`,
    "two parts": `${head}.${body}`,
    garbage: "garbage",
    empty: "",
  };
}

describe.each([
  ["node:crypto's HMAC", nodeHmac],
  ["WebCrypto's HMAC", undefined],
] as const)("tokens checked with %s", (_, hmac) => {
  it("agree with jose on every token, good or bad", async () => {
    const tokens = createTokens(secret, hmac);
    const verdicts: Record<string, [string, string]> = {};
    for (const [name, token] of Object.entries(await corpus())) {
      const ours = await tokens.verify(token);
      const verdict = "invalid" in ours ? (ours.invalid === "token expired" ? "expired" : "invalid") : `valid ${ours.sub}`;
      verdicts[name] = [verdict, await joseVerdict(token)];
    }
    // jose takes a padded signature; here a token has the one spelling it was signed with.
    expect(verdicts["signature padded"]).toEqual(["invalid", "valid v1"]);
    delete verdicts["signature padded"];
    for (const [name, [ours, jose]] of Object.entries(verdicts)) expect(ours, name).toBe(jose);
    // The corpus holds each kind of verdict.
    expect(new Set(Object.values(verdicts).map(([ours]) => ours.split(" ")[0]))).toEqual(new Set(["valid", "expired", "invalid"]));
  });

  it("checks the tokens it signs, and names what a valid token lacks", async () => {
    const tokens = createTokens(secret, hmac);
    const token = await tokens.sign({ sub: "u1", role: "creator", apiKeyId: "k1" });
    expect(await tokens.verify(token)).toEqual({ sub: "u1", role: "creator", apiKeyId: "k1" });
    expect(await tokens.verify(await new SignJWT({ role: "creator" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(key))).toEqual({
      invalid: "token has no subject or role",
    });
  });
});
