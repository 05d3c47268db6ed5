// Heartbeats racing for one lease (issue 25, item 9; docs/architecture.md, "Bounds on what one
// volunteer holds"): one volunteer sends 16 heartbeats at a time for the same block, each
// carrying a checkpoint and progress for all 16 of its chunks. Sixteen such beats once gave a
// 500 (a deadlock). What must hold: every beat is answered 200, or 503/429 with Retry-After,
// never 500, and the block is still the volunteer's.
import { type AbuseScenario, anonymousVolunteer, inLoops, jsonCall, registerCreator, startRangeTask } from "./harness.ts";

type State = { token: string; leaseId: string };

// ~48 KiB of UTF-8 a checkpoint (two- and three-byte characters), 16 a beat.
const state = { text: "é€".repeat(8192) };

const scenario: AbuseScenario<State> = {
  name: "heartbeat race",
  attack: "16 concurrent POST /api/work/heartbeat for one 16-chunk lease, each with 16 checkpoints (~48 KiB of multi-byte text each) and progress, in a loop",
  async prepare(ctx) {
    const creator = await registerCreator(ctx.base, "raced");
    await startRangeTask(ctx.base, creator, 16, { name: "raced" });
    const token = await anonymousVolunteer(ctx.base);
    // The normal creator's task is served first or second in turn: ask until this one's block comes.
    for (let i = 0; i < 20; i++) {
      const { leases } = await jsonCall(ctx.base, "POST", "/api/work/lease", { max: 16, capabilities: { threads: 16 } }, token);
      const block = (leases as { leaseId: string; inputs: unknown[] }[]).find((b) => b.inputs.length === 16);
      if (block) return { token, leaseId: block.leaseId };
    }
    throw new Error("no 16-chunk block of the raced task");
  },
  async run(ctx, { token, leaseId }) {
    const body = JSON.stringify({
      leaseIds: [leaseId],
      progress: { [leaseId]: Array.from({ length: 16 }, (_, offset) => ({ offset, fraction: 0.5 })) },
      checkpoints: { [leaseId]: Array.from({ length: 16 }, (_, offset) => ({ offset, state })) },
    });
    await inLoops(16, ctx.signal, async () => {
      const beat = await ctx.rawRequest({ method: "POST", path: "/api/work/heartbeat", token, body });
      ctx.tally(beat.status);
      if (beat.status >= 500 && beat.status !== 503) ctx.problem(`a heartbeat got ${beat.status}: ${beat.text.slice(0, 200)}`);
      if ((beat.status === 503 || beat.status === 429) && !beat.headers["retry-after"]) ctx.problem(`a ${beat.status} without Retry-After`);
    });
  },
  async check(ctx, { token, leaseId }) {
    const beat = await jsonCall(ctx.base, "POST", "/api/work/heartbeat", { leaseIds: [leaseId] }, token);
    if (!beat.extended.includes(leaseId)) ctx.problem(`the raced block is no longer the volunteer's: ${JSON.stringify(beat)}`);
  },
};

export default scenario;
