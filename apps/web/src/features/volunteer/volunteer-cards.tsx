// The volunteer page's parts (volunteer-page.tsx lays them out): the controls, the runner's state
// (its data-state is what the CLI reads, not the words), the figures, the tasks this browser
// worked for, and who it is on the leaderboard. Running is use-volunteer-run.ts's.
import type { SiteStats } from "@crowdcompute/sdk";
import { type FormEvent, useEffect, useId, useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle, Stat } from "../../components/ui/card.tsx";
import { inputClass } from "../../components/ui/field.tsx";
import { useNow } from "../../hooks/use-polled.ts";
import { formatAgo, formatCredit, formatDuration, formatNumber, formatRate, plural } from "../../lib/format.ts";
import type { ExclusionList, useExclusions } from "./use-exclusions.ts";
import type { VolunteerIdentity } from "./use-identity.ts";
import type { TaskRecord, useTotals } from "./use-totals.ts";
import { minCpuPercent, type Schedule, type VolunteerOptions } from "./use-volunteer-options.ts";
import { cores, type VolunteerRun } from "./use-volunteer-run.ts";
import { defaultVolunteerName } from "./volunteer-name.ts";
import type { RunnerStats } from "./volunteer-runner.ts";

/** "Tasks you are working for" lists the tasks of the last week, the most recent few. */
const recentTasksShown = 5;
const recentMs = 7 * 86_400_000;

const stateLabels: Record<RunnerStats["state"], string> = {
  stopped: "Not started",
  starting: "Starting…",
  running: "Computing",
  waiting: "Waiting for work",
  pausing: "Pausing…",
  paused: "Paused",
  error: "Trouble",
};

const stateColors: Record<RunnerStats["state"], string> = {
  stopped: "bg-slate-400",
  starting: "bg-amber-400",
  running: "bg-emerald-500 animate-pulse",
  waiting: "bg-sky-400",
  pausing: "bg-amber-400",
  paused: "bg-slate-400",
  error: "bg-red-500",
};

type Options = readonly [VolunteerOptions, <K extends keyof VolunteerOptions>(key: K, value: VolunteerOptions[K]) => void];

/** Start or pause, and the choices of how much of this machine to lend and when. */
export function ControlsHero({ run, options: [options, setOption] }: { run: VolunteerRun; options: Options }) {
  return (
    <section className="rounded-2xl bg-gradient-to-br from-brand-600 to-brand-700 p-6 text-white shadow-md sm:p-8" aria-labelledby="volunteer-heading">
      <h1 id="volunteer-heading" className="text-3xl font-bold tracking-tight sm:text-4xl">
        Lend your spare CPU
      </h1>
      <p className="mt-2 max-w-2xl text-brand-100">
        Your browser computes small pieces of research and other good work. Tasks run in a locked-down sandbox: they cannot see this page, your files or the network. No account needed.
      </p>
      <fieldset className="mt-6 flex min-w-0 flex-wrap items-center gap-x-6 gap-y-4" aria-label="Controls">
        {run.wanted ? (
          <Button onClick={() => run.setWanted(false)} className="!border-white/60 !bg-white/10 !text-white hover:!bg-white/20">
            Pause
          </Button>
        ) : (
          <Button onClick={() => run.setWanted(true)} className="!border-white !bg-white !px-6 !text-base !font-semibold !text-brand-700 hover:!bg-brand-50">
            {run.stats ? "Resume" : "Start"}
          </Button>
        )}
        <label className="flex items-center gap-3 text-sm">
          <span>
            Threads: <output className="font-semibold tabular-nums">{run.threads}</output>
          </span>
          <input type="range" aria-label="Threads" min={1} max={cores} value={run.threads} onChange={(event) => run.changeThreads(Number(event.target.value))} className="accent-white" />
        </label>
        <div className="flex flex-col gap-1">
          <label className="flex items-center gap-3 text-sm" title="Each thread computes at most this share of the time and rests the rest">
            <span>
              CPU share:{" "}
              <output className="font-semibold tabular-nums" data-testid="cpu-share">
                {options.cpuPercent} %
              </output>
            </span>
            <input
              type="range"
              aria-label="CPU share"
              min={minCpuPercent}
              max={100}
              step={10}
              value={options.cpuPercent}
              onChange={(event) => run.changeCpuPercent(Number(event.target.value))}
              className="accent-white"
            />
          </label>
          {/* A browser cannot preempt a worker: docs/architecture.md, "CPU time and the CPU share". */}
          <p className="max-w-xs text-xs text-brand-100" data-testid="cpu-share-note">
            Kept every ~0.1 s by tasks that yield; long chunks that never yield run at full speed and rest afterwards.
          </p>
        </div>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={options.pauseWhenHidden} onChange={(event) => setOption("pauseWhenHidden", event.target.checked)} />
          Pause when this tab is hidden
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={options.onlyOnPower} onChange={(event) => setOption("onlyOnPower", event.target.checked)} />
          Only when on power{run.power.known ? "" : " (where the browser can tell)"}
        </label>
        <ScheduleFields schedule={options.schedule} onChange={(schedule) => setOption("schedule", schedule)} />
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" data-testid="show-console" checked={options.showConsole} onChange={(event) => setOption("showConsole", event.target.checked)} />
          Show what tasks log in this page's console
        </label>
      </fieldset>
    </section>
  );
}

/** The runner's state, why it is held, and when it asks for work again. */
export function RunStatus({ run }: { run: VolunteerRun }) {
  // Started but held back (battery, a hidden tab, outside its hours): not "Not started" or
  // "Paused" beside the Pause button it pressed Start for.
  const onHold = run.heldBy !== null && (run.state === "stopped" || run.state === "paused");
  return (
    <div className="flex flex-wrap items-center gap-3">
      {/* The live region holds what changes rarely; the countdown beside it is left unannounced. */}
      <div className="flex flex-wrap items-center gap-3" role="status" aria-live="polite">
        <span className={`inline-block size-3 shrink-0 rounded-full ${run.online ? (onHold ? "bg-amber-400" : stateColors[run.state]) : "bg-red-500"}`} aria-hidden="true" />
        {/* data-state stays the runner's own (the CLI reads it); the words say what the volunteer asked for. */}
        <span className="font-medium" data-testid="state" data-state={run.state}>
          {onHold ? "On hold" : stateLabels[run.state]}
        </span>
        {!run.online ? <span className="text-sm font-medium text-red-700">Offline: the page reconnects by itself when the network is back.</span> : null}
        {run.heldBy ? (
          <span className="text-sm text-slate-600" data-testid="held">
            Held: {run.heldBy}.
          </span>
        ) : null}
        {run.stats?.message ? <span className="text-sm text-amber-800">{run.stats.message}</span> : null}
      </div>
      {run.state === "waiting" && run.stats?.nextLeaseAt ? <NextTry at={run.stats.nextLeaseAt} /> : null}
    </div>
  );
}

/** This browser's totals (every visit) beside the site's. */
export function Figures({
  run,
  totals,
  creditMs,
  creditForAccount,
  site,
}: {
  run: VolunteerRun;
  totals: ReturnType<typeof useTotals>;
  creditMs: number | null;
  creditForAccount: boolean;
  site: SiteStats | null;
}) {
  return (
    <div className="grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,3fr)_minmax(0,1fr)]">
      <section aria-labelledby="you-heading">
        <h2 id="you-heading" className="mb-2 text-sm font-semibold tracking-wide text-slate-500 uppercase">
          This browser, every visit
        </h2>
        {/* As many tiles a row as fit at 8 rem or more: the five in one row from about 1200 px. */}
        <div className="grid grid-cols-[repeat(auto-fit,minmax(8rem,1fr))] gap-3">
          <Stat label="Chunks done" value={formatNumber(totals.chunksDone)} raw={totals.chunksDone} testId="chunks-done" />
          <Stat label="Chunks failed" value={formatNumber(totals.chunksFailed)} raw={totals.chunksFailed} testId="chunks-failed" />
          <Stat label="CPU time" value={formatDuration(totals.cpuMs)} ms={totals.cpuMs} testId="cpu-time" />
          <Stat
            label="Credit"
            value={creditMs === null ? "–" : <WithUnit text={formatCredit(creditMs)} />}
            ms={creditMs ?? ""}
            testId="credit"
            hint={creditForAccount ? "CPU hours of results that won their quorum, for your account's volunteers together" : "CPU hours of results that won their quorum"}
          />
          <Stat label="Your rate" value={formatRate(run.stats?.chunksPerSec ?? 0)} raw={run.stats?.chunksPerSec ?? 0} testId="local-rate" hint="Chunks per second over the last 5 seconds" />
        </div>
      </section>
      <section aria-labelledby="site-heading">
        <h2 id="site-heading" className="mb-2 text-sm font-semibold tracking-wide text-slate-500 uppercase">
          Everyone
        </h2>
        <div className="grid grid-cols-2 gap-3">
          <Stat label="Rate" value={site ? formatRate(site.chunksPerSec) : "–"} testId="site-rate" hint="Chunks done per second, site-wide, over the last minute" />
          <Stat label="Online now" value={site ? formatNumber(site.volunteersOnline) : "–"} testId="volunteers-online" hint="Volunteers with a lease or a result in the last 2 minutes" />
        </div>
      </section>
    </div>
  );
}

/** "<0.01 CPU h" with its unit in small type, so the figure fits a narrow tile whole. */
function WithUnit({ text }: { text: string }) {
  const space = text.indexOf(" ");
  if (space < 0) return <>{text}</>;
  return (
    <>
      {text.slice(0, space)} <span className="text-sm font-normal text-slate-500">{text.slice(space + 1)}</span>
    </>
  );
}

/** The tasks of the last week this browser computed for, each with a way to skip it or its creator. */
export function HelpedTasks({ totals, exclusions }: { totals: ReturnType<typeof useTotals>; exclusions: ReturnType<typeof useExclusions> }) {
  const now = useNow(60_000);
  const recentTasks = totals.tasks.filter((task) => now - task.lastAt < recentMs).slice(0, recentTasksShown);
  const olderTasks = totals.tasks.length - recentTasks.length;
  return (
    <Card aria-labelledby="helped-heading">
      <CardTitle id="helped-heading">Tasks you are working for</CardTitle>
      {recentTasks.length > 0 ? (
        <ul className="flex flex-col gap-2 text-sm">
          {recentTasks.map((task: TaskRecord) => {
            const taskId = task.id;
            const about = task.name !== null && task.creatorId !== null ? { name: task.name, description: task.description, creator: task.creator, creatorId: task.creatorId } : undefined;
            const label = about?.name ?? `task ${taskId.slice(0, 8)}`;
            const excluded = exclusions.ids.tasks.includes(taskId) || (about ? exclusions.ids.creators.includes(about.creatorId) : false);
            return (
              <li key={taskId} className="flex justify-between gap-3" data-testid="helped-task" data-task-id={taskId} data-excluded={excluded}>
                <span className="min-w-0">
                  {about ? (
                    <span className="font-medium">{about.name}</span>
                  ) : (
                    <code className="font-mono text-xs" title={taskId}>
                      {label}
                    </code>
                  )}
                  {about ? <span className="text-xs text-slate-500"> by {about.creator ?? "an unnamed creator"}</span> : null}
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
                <span className="shrink-0 text-right tabular-nums">
                  {plural(task.chunks, "chunk")}
                  <span className="block text-xs text-slate-500">{formatAgo(now - task.lastAt)}</span>
                </span>
              </li>
            );
          })}
        </ul>
      ) : (
        <p className="text-sm text-slate-500">Tasks show up here once this browser computes their chunks.</p>
      )}
      {olderTasks > 0 ? <p className="mt-2 text-xs text-slate-500">and {plural(olderTasks, "earlier task")}</p> : null}
      <ExclusionsList list={exclusions.list} onUndo={exclusions.remove} />
    </Card>
  );
}

/** A creator in the list of skipped ones: its display name, or a short id to tell unnamed ones apart. */
function creatorLabel(name: string | null, id: string): string {
  return name ?? `unnamed creator ${id.slice(0, 8)}`;
}

/** The tasks and creators this browser skips, each with a way back. */
function ExclusionsList({ list, onUndo }: { list: ExclusionList; onUndo: (kind: keyof ExclusionList, id: string) => void }) {
  const items = [...list.tasks.map((item) => ({ kind: "tasks" as const, ...item })), ...list.creators.map((item) => ({ kind: "creators" as const, ...item }))];
  if (items.length === 0) return null;
  return (
    <section aria-labelledby="excluded-heading" className="mt-4 border-t border-slate-100 pt-3">
      <h3 id="excluded-heading" className="mb-1 text-sm font-semibold text-slate-700">
        Skipped
      </h3>
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

/** "Only between 22:00 and 07:00": the daily window, remembered with the other choices. */
function ScheduleFields({ schedule, onChange }: { schedule: Schedule; onChange: (schedule: Schedule) => void }) {
  return (
    <fieldset className="flex flex-wrap items-center gap-2 text-sm">
      <legend className="sr-only">Daily schedule</legend>
      <label className="flex items-center gap-2">
        <input type="checkbox" checked={schedule.on} onChange={(event) => onChange({ ...schedule, on: event.target.checked })} />
        Only between
      </label>
      <input
        type="time"
        aria-label="From"
        value={schedule.from}
        required
        onChange={(event) => event.target.value && onChange({ ...schedule, from: event.target.value })}
        className="rounded border border-white/50 bg-white/10 px-1 text-white [color-scheme:dark]"
      />
      <span>and</span>
      <input
        type="time"
        aria-label="To"
        value={schedule.to}
        required
        onChange={(event) => event.target.value && onChange({ ...schedule, to: event.target.value })}
        className="rounded border border-white/50 bg-white/10 px-1 text-white [color-scheme:dark]"
      />
    </fieldset>
  );
}

/** The name this browser appears under on the leaderboard, and a way to change it. */
export function WhoYouAre({ identity, shownAs }: { identity: VolunteerIdentity; shownAs: string | null }) {
  const id = useId();
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { target } = identity;
  const save = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setProblem("Enter a name.");
    setBusy(true);
    setProblem(null);
    try {
      await identity.rename(trimmed);
      setEditing(false);
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card aria-labelledby={`${id}-heading`}>
      <CardTitle id={`${id}-heading`}>You</CardTitle>
      <p className="text-sm text-slate-600">
        On the leaderboard as{" "}
        <strong className="text-slate-900" data-testid="shown-as">
          {shownAs ?? defaultVolunteerName()}
        </strong>
        {target === "account" ? " (your account's display name, for all your browsers)" : target === "account-signed-out" ? " (the name of the account this browser computes for)" : ""}.
      </p>
      {editing ? (
        <form className="mt-3 flex flex-wrap items-end gap-2" onSubmit={(event) => void save(event)}>
          <div className="min-w-0 flex-1">
            <label htmlFor={`${id}-name`} className="mb-1 block text-sm font-medium text-slate-700">
              {target === "account" ? "Account display name" : "Your name"}
            </label>
            {/* biome-ignore lint/a11y/noAutofocus: the field appears because its Change name button was pressed */}
            <input id={`${id}-name`} className={inputClass} value={name} maxLength={100} onChange={(event) => setName(event.target.value)} autoFocus aria-invalid={problem ? true : undefined} />
          </div>
          <Button type="submit" variant="primary" disabled={busy}>
            Save
          </Button>
          <Button onClick={() => setEditing(false)}>Cancel</Button>
        </form>
      ) : target === "account-signed-out" ? (
        <p className="mt-2 text-xs text-slate-500">Sign in to that account to change it.</p>
      ) : (
        <Button
          className="mt-3"
          onClick={() => {
            setName(shownAs ?? "");
            setProblem(null);
            setEditing(true);
          }}
        >
          Change name
        </Button>
      )}
      {problem ? (
        <p role="alert" className="mt-2 text-sm text-red-700">
          {problem}
        </p>
      ) : null}
      <p className="mt-3 text-xs text-slate-500">Shown to everyone on the leaderboard, never your email.</p>
    </Card>
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
  return (
    <span className="text-sm text-slate-600" data-testid="next-try">
      asking again in {seconds} s
    </span>
  );
}
