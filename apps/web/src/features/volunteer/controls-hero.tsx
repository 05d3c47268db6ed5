// The volunteer page's hero: Start or Pause, and how much of this machine to lend and when
// (the choices are use-volunteer-options.ts's; running is use-volunteer-run.ts's).
import { Button } from "../../components/ui/button.tsx";
import { minCpuPercent, type Schedule, type VolunteerOptions } from "./use-volunteer-options.ts";
import { cores, type VolunteerRun } from "./use-volunteer-run.ts";

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

/** "Only between 22:00 and 07:00": the daily window, remembered with the other choices. */
function ScheduleFields({ schedule, onChange }: { schedule: Schedule; onChange: (schedule: Schedule) => void }) {
  return (
    <fieldset className="flex flex-wrap items-center gap-2 text-sm">
      <legend className="sr-only">Daily schedule</legend>
      <label className="flex items-center gap-2">
        <input type="checkbox" checked={schedule.on} onChange={(event) => onChange({ ...schedule, on: event.target.checked })} />
        Only between
      </label>
      <TimeField label="From" value={schedule.from} onChange={(from) => onChange({ ...schedule, from })} />
      <span>and</span>
      <TimeField label="To" value={schedule.to} onChange={(to) => onChange({ ...schedule, to })} />
    </fieldset>
  );
}

/** A time of day; clearing it keeps the last time (a window needs both ends). */
function TimeField({ label, value, onChange }: { label: string; value: string; onChange: (value: string) => void }) {
  return (
    <input
      type="time"
      aria-label={label}
      value={value}
      required
      onChange={(event) => event.target.value && onChange(event.target.value)}
      className="rounded border border-white/50 bg-white/10 px-1 text-white [color-scheme:dark]"
    />
  );
}
