import { useEffect, useRef, useState } from "react";
import type { RunnerStats } from "./volunteer-runner.ts";

/** A task this browser has computed for, as it last saw it. */
export interface TaskRecord {
  id: string;
  name: string | null;
  description: string;
  creator: string | null;
  creatorId: string | null;
  /** Chunks this browser computed for it, over every visit. */
  chunks: number;
  /** When it last finished a chunk of it (ms since the epoch). */
  lastAt: number;
}

/** This browser's figures over every visit (the runner's start at zero with each page load). */
export interface Totals {
  chunksDone: number;
  chunksFailed: number;
  cpuMs: number;
  tasks: TaskRecord[];
}

const storageKey = "crowdcompute.volunteer.totals";
/** Tasks remembered: the most recent ones; the page shows fewer. */
const keptTasks = 50;
const empty: Totals = { chunksDone: 0, chunksFailed: 0, cpuMs: 0, tasks: [] };

const count = (value: unknown) => (typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0);

function load(): Totals {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey) ?? "{}") as Partial<Totals>;
    const tasks = Array.isArray(saved.tasks) ? saved.tasks.filter((t): t is TaskRecord => typeof t?.id === "string" && typeof t.lastAt === "number" && typeof t.chunks === "number") : [];
    return { chunksDone: count(saved.chunksDone), chunksFailed: count(saved.chunksFailed), cpuMs: count(saved.cpuMs), tasks };
  } catch {
    return empty;
  }
}

type Seen = Pick<RunnerStats, "chunksDone" | "chunksFailed" | "cpuMs" | "tasks">;

/**
 * This browser's totals, remembered in localStorage: what the runner has done since the page
 * loaded is added, as it happens, to what earlier visits did. Each change is added to what is
 * stored at that moment, so two tabs volunteering at once both count.
 */
export function useTotals(stats: RunnerStats | null): Totals {
  const [totals, setTotals] = useState<Totals>(load);
  const seen = useRef<Seen>({ chunksDone: 0, chunksFailed: 0, cpuMs: 0, tasks: {} });

  // biome-ignore lint/correctness/useExhaustiveDependencies: counts each new stats object once; the totals are read through the updater
  useEffect(() => {
    if (!stats) return;
    const before = seen.current;
    const done = stats.chunksDone - before.chunksDone;
    const failed = stats.chunksFailed - before.chunksFailed;
    const cpu = stats.cpuMs - before.cpuMs;
    const perTask = Object.entries(stats.tasks)
      .map(([id, n]) => [id, n - (before.tasks[id] ?? 0)] as const)
      .filter(([, n]) => n > 0);
    const named = Object.keys(stats.taskInfo).some((id) => totals.tasks.some((t) => t.id === id && t.name === null));
    seen.current = { chunksDone: stats.chunksDone, chunksFailed: stats.chunksFailed, cpuMs: stats.cpuMs, tasks: stats.tasks };
    if (done <= 0 && failed <= 0 && cpu <= 0 && perTask.length === 0 && !named) return;
    const now = Date.now();
    const next = load();
    next.chunksDone += Math.max(0, done);
    next.chunksFailed += Math.max(0, failed);
    next.cpuMs += Math.max(0, cpu);
    for (const [id, n] of perTask) {
      const record = next.tasks.find((t) => t.id === id);
      if (record) {
        record.chunks += n;
        record.lastAt = now;
      } else next.tasks.push({ id, name: null, description: "", creator: null, creatorId: null, chunks: n, lastAt: now });
    }
    for (const record of next.tasks) {
      const info = stats.taskInfo[record.id];
      if (info) Object.assign(record, { name: info.name, description: info.description, creator: info.creator, creatorId: info.creatorId });
    }
    next.tasks = next.tasks.sort((a, b) => b.lastAt - a.lastAt).slice(0, keptTasks);
    localStorage.setItem(storageKey, JSON.stringify(next));
    setTotals(next);
  }, [stats]);

  // Another tab of this browser added its share.
  useEffect(() => {
    const onStorage = (event: StorageEvent) => event.key === storageKey && setTotals(load());
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, []);

  return totals;
}
