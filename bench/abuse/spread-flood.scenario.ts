// Item 1 of issue 25, from many addresses: 8 anonymous volunteers, each from a network source
// of its own, each sending 8 concurrent ~12 MiB heartbeats (as the heartbeat flood's), resent
// as answered. One source's share cannot reach the process's total; eight can: this is the
// attack that finds the RSS ceiling (docs/architecture.md, "Bounds on what one caller holds").
// What must hold: the server stays up; past the total the answer is 503 with Retry-After.
import { type AbuseScenario, anonymousVolunteer, inLoops } from "./harness.ts";

type State = { attackers: { token: string; source: string; body: Buffer }[] };

const sources = Array.from({ length: 8 }, (_, i) => `203.0.113.${100 + i}`);

const scenario: AbuseScenario<State> = {
  name: "spread flood",
  attack: "8 anonymous volunteers from 8 addresses, 8 concurrent ~12 MiB heartbeats each (64 at once), resent as answered",
  async prepare(ctx) {
    const state = "€".repeat(256 * 1024 - 16);
    const attackers = await Promise.all(
      sources.map(async (source) => {
        const token = await anonymousVolunteer(ctx.base, source);
        const leased = await ctx.rawRequest({ method: "POST", path: "/api/work/lease", token, source, body: JSON.stringify({ max: 1 }) });
        const leaseId = (JSON.parse(leased.text).leases[0]?.leaseId as string | undefined) ?? "none";
        const checkpoints = Array.from({ length: 16 }, (_, i) => ({ offset: 0, state: `${i}${state}` }));
        return { token, source, body: Buffer.from(JSON.stringify({ leaseIds: [leaseId], checkpoints: { [leaseId]: checkpoints } })) };
      }),
    );
    return { attackers };
  },
  async run(ctx, { attackers }) {
    await inLoops(attackers.length * 8, ctx.signal, async (i) => {
      const { token, source, body } = attackers[i % attackers.length]!;
      const answer = await ctx.rawRequest({ method: "POST", path: "/api/work/heartbeat", token, source, body, signal: ctx.signal });
      ctx.tally(answer.status);
    });
  },
};

export default scenario;
