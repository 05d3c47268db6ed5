import { useEffect, useMemo, useState } from "react";
import type { Exclusions } from "./volunteer-runner.ts";

/** A task or creator the volunteer chose not to work for, with the name it showed then. */
export interface Excluded {
  id: string;
  name: string;
}

export interface ExclusionList {
  tasks: Excluded[];
  creators: Excluded[];
}

const storageKey = "crowdcompute.volunteer.exclusions";
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The lease API takes at most this many of each. */
const maxEach = 1000;

function isExcluded(value: unknown): value is Excluded {
  const item = value as Partial<Excluded> | null;
  return typeof item?.id === "string" && uuid.test(item.id) && typeof item.name === "string";
}

function load(): ExclusionList {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey) ?? "{}") as Partial<Record<keyof ExclusionList, unknown>>;
    const valid = (items: unknown) => (Array.isArray(items) ? items.filter(isExcluded).slice(-maxEach) : []);
    return { tasks: valid(saved.tasks), creators: valid(saved.creators) };
  } catch {
    return { tasks: [], creators: [] };
  }
}

/** The tasks and creators this volunteer excludes, remembered in localStorage across visits. */
export function useExclusions() {
  const [list, setList] = useState<ExclusionList>(load);
  useEffect(() => {
    localStorage.setItem(storageKey, JSON.stringify(list));
  }, [list]);
  const ids = useMemo<Exclusions>(() => ({ tasks: list.tasks.map((item) => item.id), creators: list.creators.map((item) => item.id) }), [list]);
  const add = (kind: keyof ExclusionList, item: Excluded) =>
    setList((current) => (current[kind].some((other) => other.id === item.id) ? current : { ...current, [kind]: [...current[kind], item].slice(-maxEach) }));
  const remove = (kind: keyof ExclusionList, id: string) => setList((current) => ({ ...current, [kind]: current[kind].filter((item) => item.id !== id) }));
  return { list, ids, add, remove };
}
