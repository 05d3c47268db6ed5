// The volunteer page's line of the runner's state: its data-state is what the CLI reads, not the words.
import { useEffect, useState } from "react";
import type { VolunteerRun } from "./use-volunteer-run.ts";
import type { RunnerStats } from "./volunteer-runner.ts";

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
