// Item 1 of issue 25: one anonymous volunteer, one lease, then 80 concurrent
// POST /api/work/heartbeat, each carrying 16 checkpoints of ~256 KiB of multi-byte text
// (~12 MiB a body), sent again as soon as each is answered. Before the in-flight bounds RSS
// passed 2 GB and the process died. What must hold: the server stays up (the harness checks
// /api/health) and the normal stream is served; the attack gets 429s (its source's share),
// connections closed under it, or answers to what was read.
import { type AbuseScenario, anonymousVolunteer, inLoops } from "./harness.ts";

type State = { token: string; body: Buffer };

const scenario: AbuseScenario<State> = {
  name: "heartbeat flood",
  attack: "1 anonymous volunteer, 1 lease, 80 concurrent heartbeats of 16 checkpoints × 256 KiB of 3-byte characters (~12 MiB each), resent as answered",
  async prepare(ctx) {
    const token = await anonymousVolunteer(ctx.base);
    const leased = await ctx.rawRequest({ method: "POST", path: "/api/work/lease", token, body: JSON.stringify({ max: 1 }) });
    const leaseId = (JSON.parse(leased.text).leases[0]?.leaseId as string | undefined) ?? "none";
    const state = "€".repeat(256 * 1024 - 16); // a 3-byte character: ~768 KiB of UTF-8 each
    const checkpoints = Array.from({ length: 16 }, (_, i) => ({ offset: 0, state: `${i}${state}` }));
    return { token, body: Buffer.from(JSON.stringify({ leaseIds: [leaseId], checkpoints: { [leaseId]: checkpoints } })) };
  },
  async run(ctx, { token, body }) {
    await inLoops(80, ctx.signal, async () => {
      const answer = await ctx.rawRequest({ method: "POST", path: "/api/work/heartbeat", token, body, signal: ctx.signal });
      ctx.tally(answer.status);
    });
  },
};

export default scenario;
