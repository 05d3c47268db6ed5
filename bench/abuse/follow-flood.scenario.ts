// Item 4 of issue 25: one creator opens 300 `?follow=true&from=now` streams of its busy task
// (the normal volunteers work on it too) and retries each refused one. Before, everyone
// else's p99 went to ~4.8 s and RSS to 383 MiB. What must hold: the creator holds at most its
// cap of streams (the rest get 429), the normal stream is served.
import { type AbuseScenario, inLoops, registerCreator, startRangeTask } from "./harness.ts";

type State = { token: string; taskId: string; open: number; peakOpen: number };

const scenario: AbuseScenario<State> = {
  name: "follow flood",
  attack: "1 creator, 300 concurrent ?follow=true&from=now streams of its busy task, each refused one retried after 100 ms",
  async prepare(ctx) {
    const token = await registerCreator(ctx.base, "follower");
    const taskId = await startRangeTask(ctx.base, token, 1_000_000);
    return { token, taskId, open: 0, peakOpen: 0 };
  },
  async run(ctx, state) {
    await inLoops(300, ctx.signal, async () => {
      // Held open until the attack ends (the harness's abort cuts it): counted by its status.
      let counted = false;
      const answer = await ctx.rawRequest({
        path: `/api/tasks/${state.taskId}/results?follow=true&from=now`,
        token: state.token,
        signal: ctx.signal,
        onHeaders: (status) => {
          counted = true;
          ctx.tally(status);
          if (status === 200) state.peakOpen = Math.max(state.peakOpen, ++state.open);
        },
      });
      if (!counted) ctx.tally(answer.status);
      else if (answer.status === 200) state.open--;
      if (answer.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    });
  },
  async check(ctx, state) {
    ctx.tally(`peak open ${state.peakOpen}`);
    if (state.peakOpen > 16) ctx.problem(`one creator held ${state.peakOpen} follows open at once`);
  },
};

export default scenario;
