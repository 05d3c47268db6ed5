import { useEffect, useState } from "react";

export interface VolunteerOptions {
  threads: number;
  /** The share of each thread's time chunks may use, 10..100. */
  cpuPercent: number;
  pauseWhenHidden: boolean;
  onlyOnPower: boolean;
  /** Lend only between these local times each day ("HH:MM"; `from` after `to` runs overnight). */
  schedule: Schedule;
  /** Echo work code's console output into this page's console: off unless the volunteer asks. */
  showConsole: boolean;
}

export interface Schedule {
  on: boolean;
  from: string;
  to: string;
}

export const defaultSchedule: Schedule = { on: false, from: "22:00", to: "07:00" };

const timeOfDay = /^([01]\d|2[0-3]):[0-5]\d$/;
const minutesOf = (time: string) => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));

function isSchedule(value: unknown): value is Schedule {
  const s = value as Partial<Schedule> | null;
  return typeof s?.on === "boolean" && typeof s.from === "string" && timeOfDay.test(s.from) && typeof s.to === "string" && timeOfDay.test(s.to);
}

/** Whether `at` (local time) falls in the daily window; a window whose ends are equal is the whole day. */
export function insideSchedule(schedule: Schedule, at: Date): boolean {
  if (!schedule.on) return true;
  const now = at.getHours() * 60 + at.getMinutes();
  const from = minutesOf(schedule.from);
  const to = minutesOf(schedule.to);
  if (from === to) return true;
  return from < to ? now >= from && now < to : now >= from || now < to;
}

/** When the window next opens or closes, from `at` (ms since the epoch), for the page to look again then. */
export function nextScheduleChange(schedule: Schedule, at: Date): number {
  const next = new Date(at);
  next.setSeconds(0, 0);
  const target = minutesOf(insideSchedule(schedule, at) ? schedule.to : schedule.from);
  next.setHours(Math.floor(target / 60), target % 60);
  if (next.getTime() <= at.getTime()) next.setDate(next.getDate() + 1);
  return next.getTime();
}

const storageKey = "crowdcompute.volunteer.options";

/** The volunteer's choices, remembered in localStorage across visits. */
export function useVolunteerOptions(defaults: VolunteerOptions) {
  const [options, setOptions] = useState<VolunteerOptions>(() => {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey) ?? "{}") as Partial<VolunteerOptions>;
      return {
        threads: typeof saved.threads === "number" && saved.threads >= 1 ? saved.threads : defaults.threads,
        cpuPercent: isCpuPercent(saved.cpuPercent) ? saved.cpuPercent : defaults.cpuPercent,
        pauseWhenHidden: typeof saved.pauseWhenHidden === "boolean" ? saved.pauseWhenHidden : defaults.pauseWhenHidden,
        onlyOnPower: typeof saved.onlyOnPower === "boolean" ? saved.onlyOnPower : defaults.onlyOnPower,
        schedule: isSchedule(saved.schedule) ? saved.schedule : defaults.schedule,
        showConsole: typeof saved.showConsole === "boolean" ? saved.showConsole : defaults.showConsole,
      };
    } catch {
      return defaults;
    }
  });
  useEffect(() => {
    localStorage.setItem(storageKey, JSON.stringify(options));
  }, [options]);
  const set = <K extends keyof VolunteerOptions>(key: K, value: VolunteerOptions[K]) => setOptions((o) => ({ ...o, [key]: value }));
  return [options, set] as const;
}

export const minCpuPercent = 10;

const isCpuPercent = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value) && value >= minCpuPercent && value <= 100;

interface BatteryManager extends EventTarget {
  charging: boolean;
}

/**
 * Whether the device runs on mains power: true where the Battery API is missing (desktops,
 * Firefox, Safari), else its `charging` flag, kept current.
 */
export function useOnPower(): { onPower: boolean; known: boolean } {
  const [state, setState] = useState({ onPower: true, known: false });
  useEffect(() => {
    const nav = navigator as Navigator & { getBattery?: () => Promise<BatteryManager> };
    if (!nav.getBattery) return;
    let battery: BatteryManager | null = null;
    const update = () => battery && setState({ onPower: battery.charging, known: true });
    nav.getBattery().then(
      (b) => {
        battery = b;
        update();
        b.addEventListener("chargingchange", update);
      },
      () => {},
    );
    return () => battery?.removeEventListener("chargingchange", update);
  }, []);
  return state;
}

/** document.hidden, kept current. */
export function useHidden(): boolean {
  const [hidden, setHidden] = useState(() => document.hidden);
  useEffect(() => {
    const onChange = () => setHidden(document.hidden);
    document.addEventListener("visibilitychange", onChange);
    return () => document.removeEventListener("visibilitychange", onChange);
  }, []);
  return hidden;
}

/** navigator.onLine, kept current. */
export function useOnline(): boolean {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);
  return online;
}
