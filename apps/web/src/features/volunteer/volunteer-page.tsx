import { useEffect, useRef, useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle, Stat } from "../../components/ui/card.tsx";
import { useSiteStats } from "../../hooks/use-site-stats.ts";
import { formatDuration, formatNumber, formatRate } from "../../lib/format.ts";
import { useSession } from "../../lib/session.tsx";
import { Leaderboard, useOwnEntry } from "./leaderboard.tsx";
import { useExclusions, type ExclusionList } from "./use-exclusions.ts";
import { minCpuPercent, useHidden, useOnline, useOnPower, useVolunteerOptions } from "./use-volunteer-options.ts";
import { VolunteerRunner, type RunnerStats } from "./volunteer-runner.ts";

const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency || 2 : 2;
const defaultThreads = Math.max(1, Math.floor(cores / 2));

const stateLabels: Record<RunnerStats["state"], string> = {
  stopped: "Not started",
  starting: "Starting…",
  running: "Computing",
  waiting: "Waiting for work",
  paused: "Paused",
  error: "Trouble",
};

const stateColors: Record<RunnerStats["state"], string> = {
  stopped: "bg-slate-400",
  starting: "bg-amber-400",
  running: "bg-emerald-500 animate-pulse",
  waiting: "bg-sky-400",
  paused: "bg-slate-400",
  error: "bg-red-500",
};

/** Chunks per second over the last minute, from samples of the running count. */
function useLocalRate(chunksDone: number): number {
  const samples = useRef<{ t: number; n: number }[]>([]);
  const [rate, setRate] = useState(0);
  useEffect(() => {
    const tick = () => {
      const now = Date.now();
      const list = samples.current;
      list.push({ t: now, n: chunksDone });
      while (list.length > 1 && now - list[0]!.t > 60_000) list.shift();
      const first = list[0]!;
      setRate(now - first.t > 0 ? ((chunksDone - first.n) * 1000) / Math.max(now - first.t, 1000) : 0);
    };
    tick();
    const timer = setInterval(tick, 2000);
    return () => clearInterval(timer);
  }, [chunksDone]);
  return rate;
}

/** `/`: one click to lend this browser's CPU to the tasks on this server. */
export function VolunteerPage() {
  const { client, session } = useSession();
  const [options, setOption] = useVolunteerOptions({ threads: defaultThreads, cpuPercent: 100, pauseWhenHidden: false, onlyOnPower: false });
  const exclusions = useExclusions();
  const threads = Math.min(options.threads, cores);
  const [stats, setStats] = useState<RunnerStats | null>(null);
  /** The volunteer pressed Start (or Resume) and not Pause since. */
  const [wanted, setWanted] = useState(false);
  const runner = useRef<VolunteerRunner | null>(null);
  const hidden = useHidden();
  const online = useOnline();
  const power = useOnPower();
  const site = useSiteStats(2);
  const localRate = useLocalRate(stats?.chunksDone ?? 0);
  const own = useOwnEntry(stats?.volunteerId ?? null, session?.user.id ?? null);

  const heldBy = wanted && options.pauseWhenHidden && hidden ? "this tab is hidden" : wanted && options.onlyOnPower && !power.onPower ? "this device is on battery" : null;

  useEffect(() => () => runner.current?.destroy(), []);

  // Run exactly when the volunteer wants it and no option holds it back. After a pause the
  // runner's loop still posts the chunks in hand; starting again before it has stopped would
  // run a second loop beside it, so a restart waits for the "paused" state.
  const stopping = useRef(false);
  const state = stats?.state ?? "stopped";
  useEffect(() => {
    if (!(wanted && !heldBy)) {
      if (runner.current && state !== "paused" && state !== "stopped" && !stopping.current) {
        stopping.current = true;
        runner.current.pause();
      }
      return;
    }
    if (stopping.current && state !== "paused") return;
    stopping.current = false;
    runner.current ??= new VolunteerRunner({
      client,
      storage: localStorage,
      threads,
      cpuPercent: options.cpuPercent,
      exclude: exclusions.ids,
      onChange: setStats,
    });
    runner.current.start();
    // Deliberately not client or the options: the runner keeps the client it started with,
    // and options change through its setters.
  }, [wanted, heldBy, state]);

  useEffect(() => runner.current?.setExclusions(exclusions.ids), [exclusions.ids]);

  const changeThreads = (value: number) => {
    setOption("threads", value);
    void runner.current?.setThreads(value);
  };

  const changeCpuPercent = (value: number) => {
    setOption("cpuPercent", value);
    runner.current?.setCpuPercent(value);
  };

  const taskEntries = Object.entries(stats?.tasks ?? {});

  // This browser's own credit from the runner; until it knows, the account's leaderboard entry.
  const creditMs = stats?.credit ?? own?.credit ?? null;

  return (
    <div className="flex flex-col gap-6">
      <title>{state === "running" ? `Computing (${stats?.chunksDone ?? 0}) · CrowdCompute` : "Volunteer · CrowdCompute"}</title>
      <section className="rounded-2xl bg-gradient-to-br from-brand-600 to-brand-700 p-6 text-white shadow-md sm:p-8" aria-labelledby="volunteer-heading">
        <h1 id="volunteer-heading" className="text-3xl font-bold tracking-tight sm:text-4xl">Lend your spare CPU</h1>
        <p className="mt-2 max-w-2xl text-brand-100">
          Your browser computes small pieces of research and other good work. Tasks run in a locked-down sandbox: they cannot see this page, your files or the network. No account needed.
        </p>
        <div className="mt-6 flex flex-wrap items-center gap-x-6 gap-y-4" aria-label="Controls" role="group">
          {wanted ? (
            <Button onClick={() => setWanted(false)} className="!border-white/60 !bg-white/10 !text-white hover:!bg-white/20">
              Pause
            </Button>
          ) : (
            <Button onClick={() => setWanted(true)} className="!border-white !bg-white !px-6 !text-base !font-semibold !text-brand-700 hover:!bg-brand-50">
              {stats ? "Resume" : "Start"}
            </Button>
          )}
          <label className="flex items-center gap-3 text-sm">
            <span>
              Threads: <output className="font-semibold tabular-nums">{threads}</output>
            </span>
            <input type="range" aria-label="Threads" min={1} max={cores} value={threads} onChange={(event) => changeThreads(Number(event.target.value))} className="accent-white" />
          </label>
          <label className="flex items-center gap-3 text-sm" title="Each thread computes at most this share of the time and rests the rest">
            <span>
              CPU share: <output className="font-semibold tabular-nums" data-testid="cpu-share">{options.cpuPercent} %</output>
            </span>
            <input
              type="range"
              aria-label="CPU share"
              min={minCpuPercent}
              max={100}
              step={10}
              value={options.cpuPercent}
              onChange={(event) => changeCpuPercent(Number(event.target.value))}
              className="accent-white"
            />
          </label>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" checked={options.pauseWhenHidden} onChange={(event) => setOption("pauseWhenHidden", event.target.checked)} />
            Pause when this tab is hidden
          </label>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" checked={options.onlyOnPower} onChange={(event) => setOption("onlyOnPower", event.target.checked)} />
            Only when on power{power.known ? "" : " (where the browser can tell)"}
          </label>
        </div>
      </section>

      <div className="flex flex-wrap items-center gap-3" role="status" aria-live="polite">
        <span className={`inline-block size-3 shrink-0 rounded-full ${online ? stateColors[state] : "bg-red-500"}`} aria-hidden="true" />
        <span className="font-medium" data-testid="state">{stateLabels[state]}</span>
        {!online ? <span className="text-sm font-medium text-red-700">Offline: the page reconnects by itself when the network is back.</span> : null}
        {heldBy ? <span className="text-sm text-slate-600">Held: {heldBy}.</span> : null}
        {stats?.message ? <span className="text-sm text-amber-800">{stats.message}</span> : null}
        {state === "waiting" && stats?.nextLeaseAt ? <NextTry at={stats.nextLeaseAt} /> : null}
      </div>

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,5fr)_minmax(0,2fr)]">
        <section aria-labelledby="you-heading">
          <h2 id="you-heading" className="mb-2 text-sm font-semibold tracking-wide text-slate-500 uppercase">Your contribution</h2>
          <div className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-5">
            <Stat label="Chunks done" value={stats?.chunksDone ?? 0} testId="chunks-done" />
            <Stat label="Chunks failed" value={stats?.chunksFailed ?? 0} testId="chunks-failed" />
            <div className="rounded-xl border border-slate-200 bg-white p-4 shadow-sm">
              <span className="block text-sm text-slate-500">CPU time</span>
              <strong className="mt-1 block text-xl font-semibold tabular-nums" data-testid="cpu-time" data-ms={stats?.cpuMs ?? 0}>
                {formatDuration(stats?.cpuMs ?? 0)}
              </strong>
            </div>
            <div className="rounded-xl border border-slate-200 bg-white p-4 shadow-sm">
              <span className="block text-sm text-slate-500">Credit</span>
              <strong
                className="mt-1 block text-xl font-semibold tabular-nums"
                data-testid="credit"
                data-ms={creditMs ?? ""}
                title="CPU time of results that won their quorum"
              >
                {creditMs === null ? "–" : formatDuration(creditMs)}
              </strong>
            </div>
            <Stat label="Your rate" value={formatRate(localRate)} testId="local-rate" />
          </div>
        </section>
        <section aria-labelledby="site-heading">
          <h2 id="site-heading" className="mb-2 text-sm font-semibold tracking-wide text-slate-500 uppercase">Everyone</h2>
          <div className="grid grid-cols-2 gap-3">
            <Stat label="Site-wide rate" value={site.stats ? formatRate(site.stats.chunksPerSec) : "–"} testId="site-rate" />
            <Stat label="Volunteers online" value={site.stats ? formatNumber(site.stats.volunteersOnline) : "–"} testId="volunteers-online" />
          </div>
        </section>
      </div>

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card aria-labelledby="helped-heading">
          <CardTitle id="helped-heading">Tasks you are working for</CardTitle>
          {taskEntries.length > 0 ? (
            <ul className="flex flex-col gap-2 text-sm">
              {taskEntries.map(([taskId, count]) => {
                const about = stats?.taskInfo[taskId];
                const label = about?.name ?? `task ${taskId.slice(0, 8)}`;
                const excluded = exclusions.ids.tasks.includes(taskId) || (about ? exclusions.ids.creators.includes(about.creatorId) : false);
                return (
                  <li key={taskId} className="flex justify-between gap-3" data-testid="helped-task" data-task-id={taskId} data-excluded={excluded}>
                    <span className="min-w-0">
                      {about ? <span className="font-medium">{about.name}</span> : <code className="font-mono text-xs" title={taskId}>{label}</code>}
                      {about?.creator ? <span className="text-xs text-slate-500"> by {about.creator}</span> : null}
                      {about?.description ? <span className="block truncate text-xs text-slate-500">{about.description}</span> : null}
                      {excluded ? (
                        <span className="block text-xs text-slate-500">Skipped: no new chunks of it.</span>
                      ) : (
                        <span className="mt-1 flex flex-wrap gap-x-3 text-xs">
                          <button
                            type="button"
                            className="text-slate-600 underline hover:text-slate-900"
                            aria-label={`Skip task ${label}`}
                            data-testid="exclude-task"
                            onClick={() => exclusions.add("tasks", { id: taskId, name: label })}
                          >
                            Skip this task
                          </button>
                          {about ? (
                            <button
                              type="button"
                              className="text-slate-600 underline hover:text-slate-900"
                              aria-label={`Skip all tasks by ${creatorLabel(about.creator, about.creatorId)}`}
                              data-testid="exclude-creator"
                              onClick={() => exclusions.add("creators", { id: about.creatorId, name: creatorLabel(about.creator, about.creatorId) })}
                            >
                              Skip all by this creator
                            </button>
                          ) : null}
                        </span>
                      )}
                    </span>
                    <span className="shrink-0 tabular-nums">{count} chunks</span>
                  </li>
                );
              })}
            </ul>
          ) : (
            <p className="text-sm text-slate-500">Tasks show up here once this browser computes their chunks.</p>
          )}
          <ExclusionsList list={exclusions.list} onUndo={exclusions.remove} />
        </Card>
        <Leaderboard volunteerId={stats?.volunteerId ?? null} userId={session?.user.id ?? null} />
      </div>
    </div>
  );
}

/** A creator as the volunteer sees it: its display name, or a short id when it has none. */
function creatorLabel(name: string | null, id: string): string {
  return name ?? `creator ${id.slice(0, 8)}`;
}

/** The tasks and creators this browser skips, each with a way back. */
function ExclusionsList({ list, onUndo }: { list: ExclusionList; onUndo: (kind: keyof ExclusionList, id: string) => void }) {
  const items = [...list.tasks.map((item) => ({ kind: "tasks" as const, ...item })), ...list.creators.map((item) => ({ kind: "creators" as const, ...item }))];
  if (items.length === 0) return null;
  return (
    <section aria-labelledby="excluded-heading" className="mt-4 border-t border-slate-100 pt-3">
      <h3 id="excluded-heading" className="mb-1 text-sm font-semibold text-slate-700">Skipped</h3>
      <ul className="flex flex-col gap-1 text-sm">
        {items.map(({ kind, id, name }) => (
          <li key={`${kind}:${id}`} className="flex justify-between gap-3" data-testid="exclusion" data-kind={kind === "tasks" ? "task" : "creator"} data-id={id}>
            <span className="min-w-0 truncate">{kind === "tasks" ? name : `all tasks by ${name}`}</span>
            <button
              type="button"
              className="shrink-0 text-xs text-slate-600 underline hover:text-slate-900"
              aria-label={`Work for ${kind === "tasks" ? name : `tasks by ${name}`} again`}
              data-testid="undo-exclusion"
              onClick={() => onUndo(kind, id)}
            >
              Undo
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** "Asking again in 3 s", counting down each second while the page waits for work. */
function NextTry({ at }: { at: number }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const seconds = Math.max(0, Math.ceil((at - now) / 1000));
  return <span className="text-sm text-slate-600" data-testid="next-try">asking again in {seconds} s</span>;
}
