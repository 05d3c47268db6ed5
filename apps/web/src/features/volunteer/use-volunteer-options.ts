import { useEffect, useState } from "react";

export interface VolunteerOptions {
  threads: number;
  /** The share of each thread's time chunks may use, 10..100. */
  cpuPercent: number;
  pauseWhenHidden: boolean;
  onlyOnPower: boolean;
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

export const isCpuPercent = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= minCpuPercent && value <= 100;

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
    nav.getBattery().then((b) => {
      battery = b;
      update();
      b.addEventListener("chargingchange", update);
    }, () => {});
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
