import type { Client, Task } from "@crowdcompute/sdk";
import { useMemo } from "react";
import { LineChart } from "../../components/line-chart.tsx";
import { usePolled } from "../../hooks/use-polled.ts";

/** "1 s", "5 min", "6 h": a bucket's width. */
function bucketName(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${seconds / 60} min`;
  return `${seconds / 3600} h`;
}

/** How often a running task's history is read again (the server folds closed minutes; the read is cheap). */
const refreshMs = 5_000;

/**
 * Chunks done per second over the task's whole life, from the server's history
 * (GET /api/tasks/:id/throughput), so a reload or a late visit sees the beginning too.
 */
export function ThroughputChart({ client, task }: { client: Client; task: Task }) {
  const running = task.status === "running" || task.status === "paused";
  // Read again while the task runs; once it has ended, the history no longer changes.
  const history = usePolled(() => client.taskThroughput(task.id), running ? refreshMs : 24 * 3_600_000, `${task.id}:${running}:${task.counts.done > 0}`);

  const chart = useMemo(() => {
    const data = history.data;
    if (!data || data.points.length === 0) return null;
    const width = data.bucketSec;
    const done = new Map(data.points.map((p) => [p.t, p.done]));
    const first = data.points[0]!.t;
    // Up to now while the task runs (idle buckets are zeros), else up to its last result.
    const end = running ? Math.max(data.points.at(-1)!.t, Math.floor(Date.now() / 1000 / width) * width) : data.points.at(-1)!.t;
    const times: number[] = [];
    const rate: number[] = [];
    // From an empty bucket before the first to one after the last, so that even a task done
    // within one bucket draws a line from and back to zero.
    for (let t = first - width; t <= end + width; t += width) {
      times.push(t);
      rate.push((done.get(t) ?? 0) / width);
    }
    return { times, series: [{ label: `Chunks done per second, in buckets of ${bucketName(width)}`, color: "#2456d6", values: rate }], width };
  }, [history.data, running]);

  if (!chart) return <p className="text-sm text-slate-500">{history.error ? "The history could not be read." : "The chart starts with the task's first result."}</p>;
  return <LineChart title="Chunks done per second over the task's life" times={chart.times} series={chart.series} unit="/s" minSpanSec={chart.width * 10} />;
}
