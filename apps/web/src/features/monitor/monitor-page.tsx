import type { Task } from "@crowdcompute/sdk";
import { useMemo } from "react";
import { Link } from "react-router";
import { LineChart } from "../../components/line-chart.tsx";
import { Card, CardTitle, Stat } from "../../components/ui/card.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { TaskProgress } from "../../components/ui/progress-bar.tsx";
import { StatusBadge } from "../../components/ui/status-badge.tsx";
import { Row, Table } from "../../components/ui/table.tsx";
import { type StatsSample, useSiteStats } from "../../hooks/use-site-stats.ts";
import { formatDuration, formatNumber, formatRate } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { useTaskList } from "../tasks/task-api.ts";
import { AccountsCard } from "./accounts-card.tsx";

/** Per sample: the share of chunks that failed among those finished in the last ≥10 s. */
function failureRates(samples: StatsSample[]): (number | null)[] {
  let j = 0;
  return samples.map((s, i) => {
    while (j < i - 1 && s.t - samples[j + 1]!.t >= 10) j++;
    const base = samples[j]!.stats.chunks;
    const done = s.stats.chunks.done - base.done;
    const failed = s.stats.chunks.failed - base.failed;
    return done + failed > 0 ? (100 * failed) / (done + failed) : i > 0 ? 0 : null;
  });
}

/** Seconds left at the current rate; Infinity when nothing moves. */
function remainingSec(task: Task): number {
  const left = task.counts.total - task.counts.done - task.counts.failed;
  return task.chunksPerSec > 0 ? left / task.chunksPerSec : Number.POSITIVE_INFINITY;
}

/** `/monitor` (admin): every creator's tasks, volunteers online, throughput and failures, live. */
export function MonitorPage() {
  const site = useSiteStats();
  const tasks = useTaskList(200);
  const { stats } = site;
  const { items } = tasks;
  const running = items.filter((t) => t.status === "running");
  const slowest = [...running].sort((a, b) => remainingSec(b) - remainingSec(a)).slice(0, 5);
  const finished = stats ? stats.chunks.done + stats.chunks.failed : 0;

  const charts = useMemo(() => {
    const times = site.samples.map((s) => s.t);
    return {
      times,
      throughput: [
        { label: "Chunks/s (60 s)", color: "#2456d6", values: site.samples.map((s) => s.stats.chunksPerSec) },
        // Volunteers on their own axis: a count beside a rate of thousands would lie flat on zero.
        { label: "Volunteers online", color: "#f59e0b", values: site.samples.map((s) => s.stats.volunteersOnline), axis: "right" as const },
      ],
      failures: [{ label: "Failed (% of finished, 10 s)", color: "#dc2626", values: failureRates(site.samples) }],
    };
  }, [site.samples]);

  return (
    <>
      <PageHeader title="Monitor" description={<>The whole site, live{site.live ? "" : " (connecting…)"}.</>} />
      {site.error ? <ProblemAlert problem={problemOf(site.error)} className="mb-4" /> : null}
      <div className="mb-6 grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
        <Stat label="Volunteers online" value={stats ? formatNumber(stats.volunteersOnline) : "–"} testId="site-volunteers" />
        <Stat label="Throughput" value={stats ? formatRate(stats.chunksPerSec) : "–"} testId="site-rate" />
        <Stat label="Tasks running" value={stats ? formatNumber(stats.tasks.running) : "–"} />
        <Stat label="Chunks done" value={stats ? formatNumber(stats.chunks.done) : "–"} />
        <Stat
          label="Failure rate"
          value={stats ? (finished > 0 ? `${((100 * stats.chunks.failed) / finished).toFixed(1)} %` : "0 %") : "–"}
          hint="Failed chunks among all finished ones"
          testId="site-failure-rate"
        />
        <Stat label="CPU time" value={stats ? formatDuration(stats.cpuMs) : "–"} />
      </div>
      <div className="mb-6 grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card aria-labelledby="tp-heading">
          <CardTitle id="tp-heading">Throughput and volunteers</CardTitle>
          {site.samples.length > 1 ? (
            <LineChart title="Site-wide chunks per second (left axis) and volunteers online (right axis) over time" times={charts.times} series={charts.throughput} unit="/s" />
          ) : (
            <p className="text-sm text-slate-500">Collecting…</p>
          )}
        </Card>
        <Card aria-labelledby="fail-heading">
          <CardTitle id="fail-heading">Failures</CardTitle>
          {site.samples.length > 1 ? (
            <LineChart title="Share of finished chunks that failed, over time" times={charts.times} series={charts.failures} unit="%" />
          ) : (
            <p className="text-sm text-slate-500">Collecting…</p>
          )}
        </Card>
      </div>
      {slowest.length > 0 ? (
        <Card className="mb-6" aria-labelledby="slow-heading">
          <CardTitle id="slow-heading">Slowest running tasks</CardTitle>
          <ol className="flex flex-col gap-2 text-sm">
            {slowest.map((task) => (
              <li key={task.id} className="flex flex-wrap justify-between gap-2">
                <Link to={`/tasks/${task.id}`} className="font-medium text-brand-700 hover:underline">
                  {task.name}
                </Link>
                <span className="text-slate-600 tabular-nums">
                  {formatRate(task.chunksPerSec)} · {Number.isFinite(remainingSec(task)) ? `${formatDuration(remainingSec(task) * 1000)} left` : "no progress in the last minute"}
                </span>
              </li>
            ))}
          </ol>
        </Card>
      ) : null}
      <Card aria-labelledby="all-heading">
        <CardTitle id="all-heading">All tasks</CardTitle>
        {tasks.error ? <ProblemAlert problem={problemOf(tasks.error)} /> : null}

        <Table label="All tasks" columns={["Task", "Status", { label: "Progress", className: "w-1/4" }, "Rate", "Failed", "CPU"]} minWidth="min-w-[40rem]">
          {items.map((task) => (
            <Row key={task.id} middle>
              <td className="py-2 pr-3">
                <Link to={`/tasks/${task.id}`} className="font-medium text-brand-700 hover:underline">
                  {task.name}
                </Link>
              </td>
              <td className="py-2 pr-3">
                <StatusBadge task={task} />
              </td>
              <td className="py-2 pr-3">
                <TaskProgress task={task} label={`Progress of ${task.name}`} />
                <span className="text-xs text-slate-500 tabular-nums">
                  {formatNumber(task.counts.done + task.counts.failed)} / {formatNumber(task.counts.total)}
                </span>
              </td>
              <td className="py-2 pr-3 tabular-nums">{formatRate(task.chunksPerSec)}</td>
              <td className="py-2 pr-3 tabular-nums">{formatNumber(task.counts.failed)}</td>
              <td className="py-2 tabular-nums whitespace-nowrap">{formatDuration(task.cpuMs)}</td>
            </Row>
          ))}
        </Table>
        {tasks.isSuccess && items.length === 0 ? <p className="py-3 text-sm text-slate-500">No tasks yet.</p> : null}
      </Card>
      <div className="mt-6">
        <AccountsCard />
      </div>
    </>
  );
}
