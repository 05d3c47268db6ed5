// Item 1 of issue 25: 40 concurrent ~30 MiB POST /api/work/results from one anonymous
// volunteer (30 results of ~1 MiB of text each), resent as answered. Before the in-flight
// bounds this killed the process (heap limit). What must hold: as for the heartbeat flood.
import { type AbuseScenario, anonymousVolunteer, inLoops } from "./harness.ts";

type State = { token: string; body: Buffer };

const scenario: AbuseScenario<State> = {
  name: "results flood",
  attack: "1 anonymous volunteer, 40 concurrent results bodies of 30 × ~1 MiB strings (~30 MiB each), resent as answered",
  async prepare(ctx) {
    const token = await anonymousVolunteer(ctx.base);
    const leased = await ctx.rawRequest({ method: "POST", path: "/api/work/lease", token, body: JSON.stringify({ max: 1 }) });
    const leaseId = (JSON.parse(leased.text).leases[0]?.leaseId as string | undefined) ?? "none";
    const result = "x".repeat(1024 * 1024 - 64);
    return { token, body: Buffer.from(JSON.stringify({ results: [{ leaseId, results: Array.from({ length: 30 }, (_, i) => `${i}${result}`), cpuMs: 1 }] })) };
  },
  async run(ctx, { token, body }) {
    await inLoops(40, ctx.signal, async () => {
      const answer = await ctx.rawRequest({ method: "POST", path: "/api/work/results", token, body, signal: ctx.signal });
      ctx.tally(answer.status);
    });
  },
};

export default scenario;
