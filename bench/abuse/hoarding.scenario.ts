// Lease hoarding (issue 25, item 3; docs/architecture.md, "Bounds on what one volunteer
// holds"): three anonymous identities of one address loop the largest lease request there is
// and heartbeat everything they got, against a 3,000-chunk task that the normal volunteers
// work on too. Before the bounds one such volunteer held 204,800 chunks after 1.6 s and kept a
// 3,000-chunk task at "leased 3000, done 0" for as long as it beat. What must hold: the task's
// chunks out at any moment stay within the attacker's share (the normal volunteers are the
// other party asking: half the open chunks, plus theirs), the normal volunteers still get
// chunks of it, and none is lost (done + leased + pending = 3000, none failed).
import { type AbuseScenario, anonymousVolunteer, inLoops, jsonCall, registerCreator, startRangeTask } from "./harness.ts";

const chunks = 3000;
const victimSource = "192.0.2.20";
const greedy = JSON.stringify({ bufferMs: 600_000, capabilities: { threads: 256 } });

type Counts = { total: number; pending: number; leased: number; done: number; failed: number };
type State = { creator: string; taskId: string; hoarders: string[]; held: string[][]; peakLeased: number; chunksGot: number };

const scenario: AbuseScenario<State> = {
  name: "lease hoarding",
  attack: `3 anonymous identities of one address loop POST /api/work/lease {bufferMs: 600000, threads: 256} (6 at once) and heartbeat all they hold, against a ${chunks}-chunk task the normal volunteers also work on`,
  async prepare(ctx) {
    const creator = await registerCreator(ctx.base, "victim", victimSource);
    const taskId = await startRangeTask(ctx.base, creator, chunks, { name: "hoarded" }, victimSource);
    const hoarders = await Promise.all([0, 1, 2].map(() => anonymousVolunteer(ctx.base)));
    return { creator, taskId, hoarders, held: hoarders.map(() => []), peakLeased: 0, chunksGot: 0 };
  },
  async run(ctx, state) {
    const counts = async () => (await jsonCall(ctx.base, "GET", `/api/tasks/${state.taskId}`, undefined, state.creator, victimSource)).task.counts as Counts;
    const sampling = (async () => {
      while (!ctx.signal.aborted) {
        state.peakLeased = Math.max(state.peakLeased, (await counts()).leased);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await inLoops(6, ctx.signal, async (i) => {
      const h = i % state.hoarders.length;
      const token = state.hoarders[h]!;
      const leased = await ctx.rawRequest({ method: "POST", path: "/api/work/lease", token, body: greedy });
      ctx.tally(leased.status === 200 ? (JSON.parse(leased.text).leases.length > 0 ? "200 with leases" : "200 none") : leased.status);
      if (leased.status === 200) {
        const blocks = JSON.parse(leased.text).leases as { leaseId: string; inputs: unknown[] }[];
        for (const block of blocks) state.chunksGot += block.inputs.length;
        state.held[h]!.push(...blocks.map((b) => b.leaseId));
      }
      const ids = state.held[h]!.slice(-256);
      if (ids.length > 0) {
        const beat = await ctx.rawRequest({ method: "POST", path: "/api/work/heartbeat", token, body: JSON.stringify({ leaseIds: ids }) });
        ctx.tally(`heartbeat ${beat.status}`);
      } else await new Promise((resolve) => setTimeout(resolve, 20));
    });
    await sampling;
  },
  async check(ctx, state) {
    const end = (await jsonCall(ctx.base, "GET", `/api/tasks/${state.taskId}`, undefined, state.creator, victimSource)).task.counts as Counts;
    ctx.tally(`hoarded task: peak leased ${state.peakLeased}, at the end done ${end.done} leased ${end.leased}`);
    // Two parties ask (the attacker's address and the normal volunteers'): half, plus the normal ones' own.
    if (state.peakLeased > chunks / 2 + 8) ctx.problem(`the hoarder held ${state.peakLeased} of ${chunks} chunks at once (its share is half)`);
    if (end.done === 0) ctx.problem("the normal volunteers got no chunk of the hoarded task");
    if (end.failed > 0 || end.done + end.leased + end.pending !== chunks) ctx.problem(`chunks lost: ${JSON.stringify(end)}`);
  },
};

export default scenario;
