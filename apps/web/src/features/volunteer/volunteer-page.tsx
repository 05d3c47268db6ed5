import { useSiteStats } from "../../hooks/use-site-stats.ts";
import { formatNumber } from "../../lib/format.ts";
import { useSession } from "../../lib/session.tsx";
import { ControlsHero } from "./controls-hero.tsx";
import { HelpedTasks } from "./helped-tasks.tsx";
import { isMine, Leaderboard, useLeaderboard } from "./leaderboard.tsx";
import { RunStatus } from "./run-status.tsx";
import { RunningNow } from "./running-now.tsx";
import { useExclusions } from "./use-exclusions.ts";
import { useVolunteerIdentity } from "./use-identity.ts";
import { useTotals } from "./use-totals.ts";
import { defaultSchedule, useVolunteerOptions } from "./use-volunteer-options.ts";
import { cores, useVolunteerRun } from "./use-volunteer-run.ts";
import { Figures } from "./volunteer-figures.tsx";
import { WhoYouAre } from "./who-you-are.tsx";

const defaultThreads = Math.max(1, Math.floor(cores / 2));

/**
 * `/`: one click to lend this browser's CPU to the tasks on this server. Running is
 * use-volunteer-run.ts's; the parts shown are beside it, one file each: controls-hero.tsx,
 * run-status.tsx, volunteer-figures.tsx, running-now.tsx, who-you-are.tsx, helped-tasks.tsx and
 * leaderboard.tsx.
 */
export function VolunteerPage() {
  const { client, session, signIn } = useSession();
  const options = useVolunteerOptions({ threads: defaultThreads, cpuPercent: 100, pauseWhenHidden: false, onlyOnPower: false, schedule: defaultSchedule, showConsole: false });
  const exclusions = useExclusions();
  const run = useVolunteerRun(client, options, exclusions);
  const { stats, state, threads, heldBy } = run;
  const site = useSiteStats(2);
  const board = useLeaderboard();
  const identity = useVolunteerIdentity(client, session, signIn, stats?.volunteerId ?? null);
  const volunteerId = stats?.volunteerId ?? identity.figures?.id ?? null;
  const own = board.data?.find((entry) => isMine(entry, volunteerId, session?.user.id ?? null)) ?? null;
  const totals = useTotals(stats);
  // Credit as the server counts it: this volunteer's, or its account's when it computes for one.
  const creditMs = own?.credit ?? stats?.credit ?? identity.figures?.credit ?? null;

  return (
    <div className="flex flex-col gap-6">
      <title>{state === "running" ? `Computing (${formatNumber(totals.chunksDone)}) · CrowdCompute` : "Volunteer · CrowdCompute"}</title>
      <ControlsHero run={run} options={options} />
      <RunStatus run={run} />
      <Figures run={run} totals={totals} creditMs={creditMs} creditForAccount={own?.kind === "user"} site={site.stats} />

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <RunningNow running={stats?.running ?? []} taskInfo={stats?.taskInfo ?? {}} threads={threads} state={state} wanted={run.wanted} resumable={stats !== null} heldBy={heldBy} />
        <WhoYouAre identity={identity} shownAs={identity.figures?.shownAs ?? own?.name ?? null} />
      </div>

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <HelpedTasks totals={totals} exclusions={exclusions} />
        <Leaderboard board={board} volunteerId={volunteerId} userId={session?.user.id ?? null} />
      </div>
    </div>
  );
}
