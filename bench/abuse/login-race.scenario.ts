// Item 5 of issue 25: 300 wrong sign-ins at once against one account from one source, sent
// again as answered. Before, the limit was checked before the password and counted after, so
// all 300 were checked (300 PBKDF2 runs). What must hold: at most the account's limit (10 in
// 15 minutes) of them are ever checked (401); the rest are 429 before any hashing.
import { type AbuseScenario, inLoops, registerCreator } from "./harness.ts";

type State = { email: string };

const scenario: AbuseScenario<State> = {
  name: "login race",
  attack: "300 concurrent wrong sign-ins for one account from one source, resent as answered",
  async prepare(ctx) {
    const email = `victim-${process.pid}@example.com`;
    await ctx.rawRequest({ method: "POST", path: "/api/auth/register", body: JSON.stringify({ email, password: "the right password" }) });
    await registerCreator(ctx.base, "bystander");
    return { email };
  },
  async run(ctx, { email }) {
    let guess = 0;
    await inLoops(300, ctx.signal, async () => {
      const answer = await ctx.rawRequest({ method: "POST", path: "/api/auth/login", body: JSON.stringify({ email, password: `wrong guess ${guess++}` }), signal: ctx.signal });
      ctx.tally(answer.status);
    });
  },
  async check(ctx) {
    const checked = ctx.outcomes().get("401") ?? 0;
    if (checked > 10) ctx.problem(`${checked} wrong guesses were checked (the limit is 10)`);
  },
};

export default scenario;
