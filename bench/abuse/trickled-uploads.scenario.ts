// Item 2 of issue 25: one creator trickles 10 POST /api/tasks/{id}/inputs bodies a line a
// second, and reopens each as soon as it is answered. Before, they held all 10 database
// connections (3 requests served in 15 s) and every follower behind their open
// transactions. What must hold: the normal stream is served; the uploads beyond the
// creator's slots get 429, the rest are cut (408) when they pass the body deadline; the
// attacked task stores nothing of a part that never ended.
import { type AbuseScenario, inLoops, jsonCall, registerCreator, trickle } from "./harness.ts";

type State = { token: string; taskId: string };

const scenario: AbuseScenario<State> = {
  name: "trickled uploads",
  attack: "1 creator, 10 concurrent NDJSON uploads sending a line a second (never ending), reopened as answered",
  async prepare(ctx) {
    const token = await registerCreator(ctx.base, "trickler");
    const task = await jsonCall(ctx.base, "POST", "/api/tasks", { name: "trickled", code: "export default (x) => x" }, token);
    return { token, taskId: task.task.id as string };
  },
  async run(ctx, { token, taskId }) {
    await inLoops(10, ctx.signal, async () => {
      const answer = await ctx.rawRequest({
        method: "POST",
        path: `/api/tasks/${taskId}/inputs?offset=0`,
        token,
        headers: { "content-type": "application/x-ndjson" },
        body: trickle(
          Array.from({ length: 100_000 }, () => '{"line": 1}\n'),
          1_000,
          ctx.signal,
        ),
        signal: ctx.signal,
      });
      ctx.tally(answer.status);
      if (answer.status === 429) await new Promise((resolve) => setTimeout(resolve, 200));
    });
  },
  async check(ctx, { token, taskId }) {
    const { task } = await jsonCall(ctx.base, "GET", `/api/tasks/${taskId}`, undefined, token);
    if (task.counts.total !== 0) ctx.problem(`a never-ended upload stored ${task.counts.total} inputs`);
  },
};

export default scenario;
