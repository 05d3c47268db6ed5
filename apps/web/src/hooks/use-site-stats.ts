import type { SiteStats } from "@crowdcompute/sdk";
import { useEffect, useState } from "react";
import { api } from "../lib/api.ts";

export interface StatsSample {
  /** Seconds since the epoch. */
  t: number;
  stats: SiteStats;
}

/**
 * Site-wide figures, live: GET /api/stats at once, then the `stats` events of
 * /api/stats/events (public, so a plain EventSource, which reconnects by itself).
 * Keeps the last `keep` samples for charts.
 */
export function useSiteStats(keep = 600) {
  const [samples, setSamples] = useState<StatsSample[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(false);

  useEffect(() => {
    let closed = false;
    let last: SiteStats | null = null;
    const add = (stats: SiteStats) => {
      if (closed) return;
      last = stats;
      const t = Date.now() / 1000;
      // Samples under a second apart replace each other, so the chart's time axis stays in seconds.
      setSamples((old) => (old.length > 0 && t - old.at(-1)!.t < 1 ? [...old.slice(0, -1), { t, stats }] : [...old.slice(1 - keep), { t, stats }]));
    };
    // Events come only when the figures change: repeat the last one so time moves on the charts.
    const ticker = setInterval(() => last && add(last), 2000);
    api.stats().then(add, (e: unknown) => !closed && setError(e));
    const source = new EventSource("/api/stats/events");
    source.addEventListener("stats", (event) => {
      setLive(true);
      setError(null);
      add(JSON.parse((event as MessageEvent<string>).data) as SiteStats);
    });
    source.onerror = () => setLive(false);
    return () => {
      closed = true;
      clearInterval(ticker);
      source.close();
    };
  }, [keep]);

  return { stats: samples.at(-1)?.stats ?? null, samples, error, live };
}
