// Running this browser as a volunteer: the runner (volunteer-runner.ts) started exactly while
// the volunteer wants it and none of the options holds it back (a hidden tab, battery, outside
// the daily hours), and the options it is changed through.
import type { Client } from "@crowdcompute/sdk";
import { useEffect, useRef, useState } from "react";
import { insideSchedule, nextScheduleChange, type Schedule, useHidden, useOnline, useOnPower, type VolunteerOptions } from "./use-volunteer-options.ts";
import { type Exclusions, type RunnerStats, VolunteerRunner } from "./volunteer-runner.ts";

export const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency || 2 : 2;

/**
 * Set while the volunteer wants to compute (it pressed Start or Resume and not Pause since):
 * a reload or a browser restart starts again by itself (docs/architecture.md, "The volunteer page").
 */
const startedKey = "crowdcompute.volunteer.started";

function storedWanted(): boolean {
  try {
    return localStorage.getItem(startedKey) === "1";
  } catch {
    return false;
  }
}

export function useVolunteerRun(
  client: Client,
  [options, setOption]: readonly [VolunteerOptions, <K extends keyof VolunteerOptions>(key: K, value: VolunteerOptions[K]) => void],
  exclusions: { ids: Exclusions },
) {
  const threads = Math.min(options.threads, cores);
  const [stats, setStats] = useState<RunnerStats | null>(null);
  /** The volunteer pressed Start (or Resume) and not Pause since, in this page or an earlier one. */
  const [wanted, setWantedState] = useState(storedWanted);
  const setWanted = (value: boolean) => {
    setWantedState(value);
    try {
      if (value) localStorage.setItem(startedKey, "1");
      else localStorage.removeItem(startedKey);
    } catch {
      // Storage refused (a private window's quota): this page still runs as asked.
    }
  };
  const runner = useRef<VolunteerRunner | null>(null);
  const hidden = useHidden();
  const online = useOnline();
  const power = useOnPower();
  const scheduled = useInSchedule(options.schedule);

  const heldBy = !wanted
    ? null
    : options.pauseWhenHidden && hidden
      ? "this tab is hidden"
      : options.onlyOnPower && !power.onPower
        ? "this device is on battery"
        : !scheduled
          ? `outside your hours (${options.schedule.from}–${options.schedule.to})`
          : null;

  useEffect(() => () => runner.current?.destroy(), []);
  // A closing or reloading tab gives its blocks back at once instead of leaving them to their
  // deadline. A page the browser brings back from its back/forward cache gave them back and its
  // runner is spent: it loads afresh, and starts again if the volunteer had started it.
  useEffect(() => {
    const leaving = () => runner.current?.releaseOnExit();
    const back = (event: PageTransitionEvent) => {
      if (event.persisted && runner.current) location.reload();
    };
    window.addEventListener("pagehide", leaving);
    window.addEventListener("pageshow", back);
    return () => {
      window.removeEventListener("pagehide", leaving);
      window.removeEventListener("pageshow", back);
    };
  }, []);

  // Run exactly when the volunteer wants it and no option holds it back. After a pause the
  // runner's loop still posts the chunks in hand; starting again before it has stopped would
  // run a second loop beside it, so a restart waits for the "paused" state.
  const stopping = useRef(false);
  const state = stats?.state ?? "stopped";
  // biome-ignore lint/correctness/useExhaustiveDependencies: the runner reads its options when it starts; only wanting to run, being held and its state decide
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
      showConsole: options.showConsole,
      onChange: setStats,
    });
    runner.current.start();
    // Deliberately not client or the options: the runner keeps the client it started with,
    // and options change through its setters.
  }, [wanted, heldBy, state]);

  useEffect(() => runner.current?.setExclusions(exclusions.ids), [exclusions.ids]);
  useEffect(() => runner.current?.setShowConsole(options.showConsole), [options.showConsole]);

  const changeThreads = (value: number) => {
    setOption("threads", value);
    void runner.current?.setThreads(value);
  };

  const changeCpuPercent = (value: number) => {
    setOption("cpuPercent", value);
    runner.current?.setCpuPercent(value);
  };

  return { stats, state, wanted, setWanted, heldBy, threads, online, power, changeThreads, changeCpuPercent };
}

export type VolunteerRun = ReturnType<typeof useVolunteerRun>;

/** Re-evaluated when the window opens or closes (and each minute, in case the clock jumped). */
function useInSchedule(schedule: Schedule): boolean {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!schedule.on) return;
    const wait = Math.min(60_000, Math.max(1000, nextScheduleChange(schedule, new Date()) - Date.now()));
    const timer = setTimeout(() => setTick((n) => n + 1), wait);
    return () => clearTimeout(timer);
  });
  return insideSchedule(schedule, new Date());
}
