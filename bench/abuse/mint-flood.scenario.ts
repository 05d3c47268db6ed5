// Minting volunteers (issue 24; docs/architecture.md, "Minting volunteers"): one source mints
// anonymous volunteers in 50 loops at once, sent again as answered, to build a sybil pool.
// This scenario runs with the deployment's limits (the harness raises them for the others):
// at most VOLUNTEER_MINT_PER_HOUR of the attacker's mints are created, the rest 429, and
// another source still mints.
import { type AbuseScenario, inLoops } from "./harness.ts";

const perHour = 10;

const scenario: AbuseScenario = {
  name: "mint flood",
  attack: "anonymous POST /api/volunteers in 50 concurrent loops from one source, resent as answered",
  env: { VOLUNTEER_MINT_PER_HOUR: String(perHour), VOLUNTEER_MINT_PER_DAY: "20" },
  async run(ctx) {
    await inLoops(50, ctx.signal, async () => {
      const answer = await ctx.rawRequest({ method: "POST", path: "/api/volunteers", body: JSON.stringify({ name: "sybil" }), signal: ctx.signal });
      ctx.tally(answer.status);
    });
  },
  async check(ctx) {
    const made = ctx.outcomes().get("201") ?? 0;
    if (made > perHour) ctx.problem(`${made} volunteers were minted from one source (the limit is ${perHour} an hour)`);
    const other = await ctx.rawRequest({ method: "POST", path: "/api/volunteers", body: "{}", source: "192.0.2.99" });
    if (other.status !== 201) ctx.problem(`another source could not mint: ${other.status}`);
  },
};

export default scenario;
