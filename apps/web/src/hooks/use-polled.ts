import { useEffect, useState } from "react";

/**
 * `load()` now and every `everyMs` while mounted: the latest value or error. For the volunteer
 * page, which does without a query cache (it is the first script a visitor downloads).
 */
export function usePolled<T>(load: () => Promise<T>, everyMs: number, key = "") {
  const [state, setState] = useState<{ data: T | null; error: unknown }>({ data: null, error: null });
  // biome-ignore lint/correctness/useExhaustiveDependencies: `load` is a new function each render; `key` says when it asks for something else
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const data = await load();
        if (!stopped) setState({ data, error: null });
      } catch (error) {
        if (!stopped) setState((old) => ({ data: old.data, error }));
      }
      if (!stopped) timer = setTimeout(() => void tick(), everyMs);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [everyMs, key]);
  return state;
}

/** The time (ms since the epoch), refreshed every `everyMs`. */
export function useNow(everyMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}
