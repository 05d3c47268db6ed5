import type { Chunk, LifecycleAction, Problem, Task } from "@crowdcompute/sdk";
import { useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { LineChart } from "../../components/line-chart.tsx";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle, Stat } from "../../components/ui/card.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { TaskProgress } from "../../components/ui/progress-bar.tsx";
import { StatusBadge } from "../../components/ui/status-badge.tsx";
import { formatDate, formatDuration, formatNumber, formatRate } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";
import { downloadResults } from "./results-download.ts";
import { cloneTask, deleteTask, retryFailed, useLiveTask, type LiveSample } from "./task-api.ts";
import { preview } from "./test-run-results.tsx";

const maxFailedShown = 100;

/** Chunks finished per second between samples at least 2 s apart, for the chart. */
function throughput(samples: LiveSample[]) {
  const times: number[] = [];
  const rate: (number | null)[] = [];
  const average: (number | null)[] = [];
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    while (j < i - 1 && s.t - samples[j + 1]!.t >= 2) j++;
    const base = samples[j]!;
    times.push(s.t);
    rate.push(i > 0 && s.t > base.t ? Math.max(0, (s.final - base.final) / (s.t - base.t)) : null);
    average.push(s.chunksPerSec);
  }
  return { times, rate, average };
}

/** `/tasks/:id`: live progress over SSE, throughput, errors, results, lifecycle. */
export function TaskPage() {
  const { id = "" } = useParams();
  const { client, session } = useSession();
  const token = session?.token ?? "";
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const live = useLiveTask(client, id);
  const { task } = live;
  const [busy, setBusy] = useState<string | null>(null);
  const [actionProblem, setActionProblem] = useState<Problem | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [failed, setFailed] = useState<Chunk[] | null>(null);
  const chart = useMemo(() => throughput(live.samples), [live.samples]);
  const series = useMemo(
    () => [
      { label: "Chunks/s (now)", color: "#2456d6", values: chart.rate },
      { label: "Chunks/s (60 s average)", color: "#10b981", values: chart.average },
    ],
    [chart],
  );

  const act = async (label: string, run: () => Promise<Task | void>, after?: (task: Task | void) => void) => {
    setBusy(label);
    setActionProblem(null);
    try {
      const result = await run();
      if (result) live.setTask(result);
      void queryClient.invalidateQueries({ queryKey: ["tasks"] });
      after?.(result);
    } catch (error) {
      setActionProblem(problemOf(error));
    } finally {
      setBusy(null);
    }
  };
  const lifecycle = (action: LifecycleAction, label: string) => (
    <Button key={action} variant={action === "cancel" ? "danger" : action === "start" ? "primary" : "secondary"} disabled={busy !== null} onClick={() => void act(label, () => client.taskAction(id, action), () => live.refresh())}>
      {label}
    </Button>
  );

  const loadFailed = async () => {
    setBusy("Loading failed chunks");
    setActionProblem(null);
    try {
      const found: Chunk[] = [];
      // A filtered page may come back short before the end: follow the cursor until it is null.
      for (let cursor: string | null = null; found.length < maxFailedShown; ) {
        const page = await client.listChunks(id, { status: "failed", limit: maxFailedShown - found.length, ...(cursor ? { cursor } : {}) });
        found.push(...page.items);
        cursor = page.nextCursor;
        if (cursor === null) break;
      }
      setFailed(found);
    } catch (error) {
      setActionProblem(problemOf(error));
    } finally {
      setBusy(null);
    }
  };

  if (!task) {
    return live.error ? (
      <>
        <PageHeader title="Task" />
        <ProblemAlert problem={problemOf(live.error)} />
        <p className="mt-4"><Link to="/tasks" className="text-brand-700 underline">Back to tasks</Link></p>
      </>
    ) : (
      <p className="text-slate-500">Loading…</p>
    );
  }

  const { counts } = task;
  const final = counts.done + counts.failed;
  const ended = task.status === "done" || task.status === "failed" || task.status === "cancelled";

  return (
    <>
      <PageHeader
        title={<span className="flex flex-wrap items-center gap-3">{task.name} <StatusBadge status={task.status} /></span>}
        docTitle={`${task.name} (${task.status})`}
        description={task.description || undefined}
        actions={
          <>
            {task.status === "draft" ? lifecycle("start", "Start") : null}
            {task.status === "running" ? lifecycle("pause", "Pause") : null}
            {task.status === "paused" ? lifecycle("resume", "Resume") : null}
            {task.status === "running" || task.status === "paused" || task.status === "draft" ? lifecycle("cancel", "Cancel") : null}
            {counts.failed > 0 ? (
              <Button disabled={busy !== null} onClick={() => void act("Retry", () => retryFailed(token, id), () => live.refresh())}>Retry failed</Button>
            ) : null}
            <Button disabled={busy !== null} onClick={() => void act("Clone", () => cloneTask(token, id), (clone) => clone && void navigate(`/tasks/${clone.id}`))}>Clone</Button>
            <Button variant="danger" disabled={busy !== null} onClick={() => setConfirmDelete(true)}>Delete</Button>
          </>
        }
      />
      {confirmDelete ? (
        <div role="alertdialog" aria-labelledby="delete-q" className="mb-4 flex flex-wrap items-center gap-3 rounded-lg border border-red-200 bg-red-50 p-4">
          <p id="delete-q" className="flex-1 text-red-900">Delete “{task.name}” with its inputs and results? This cannot be undone.</p>
          <Button variant="danger" onClick={() => void act("Delete", () => deleteTask(token, id), () => void navigate("/tasks"))}>Delete task</Button>
          <Button onClick={() => setConfirmDelete(false)} autoFocus>Keep it</Button>
        </div>
      ) : null}
      <ProblemAlert problem={actionProblem} className="mb-4" />
      {live.error && task ? <p role="status" className="mb-4 text-sm text-amber-800">Live updates interrupted ({problemOf(live.error).detail}); reconnecting…</p> : null}

      <Card className="mb-6" aria-labelledby="progress-heading">
        <div className="mb-3 flex flex-wrap items-baseline justify-between gap-2">
          <h2 id="progress-heading" className="text-lg font-semibold">Progress</h2>
          <span className="text-sm text-slate-500" role="status" data-testid="progress-text">
            {formatNumber(final)} of {formatNumber(counts.total)} chunks{task.sealed ? "" : " (inputs still open)"}
            {live.connected && !ended ? " · live" : ""}
          </span>
        </div>
        <TaskProgress task={task} label="Task progress" />
        <div className="mt-4 grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
          <Stat label="Done" value={formatNumber(counts.done)} testId="count-done" />
          <Stat label="Failed" value={formatNumber(counts.failed)} testId="count-failed" />
          <Stat label="Running" value={formatNumber(counts.leased)} />
          <Stat label="Waiting" value={formatNumber(counts.pending)} />
          <Stat label="Rate (60 s)" value={formatRate(task.chunksPerSec)} />
          <Stat label="CPU time" value={formatDuration(task.cpuMs)} />
        </div>
      </Card>

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card aria-labelledby="chart-heading">
          <CardTitle id="chart-heading">Throughput</CardTitle>
          {live.samples.length > 1 ? (
            <LineChart title="Chunks finished per second over time" times={chart.times} series={series} unit="/s" />
          ) : (
            <p className="text-sm text-slate-500">The chart fills in while this page is open and the task makes progress.</p>
          )}
        </Card>

        <Card aria-labelledby="results-heading">
          <CardTitle id="results-heading">Results</CardTitle>
          <p className="mb-3 text-sm text-slate-600">One line per finished chunk, in index order{task.status === "running" ? " (so far)" : ""}.</p>
          <div className="flex flex-wrap gap-2">
            <Button onClick={() => void act("Download", () => downloadResults(client, task, "ndjson"))} disabled={busy !== null}>Download NDJSON</Button>
            <Button onClick={() => void act("Download", () => downloadResults(client, task, "csv"))} disabled={busy !== null}>Download CSV</Button>
          </div>
          <h3 className="mt-5 mb-1 text-sm font-semibold text-slate-700">Aggregate</h3>
          <p className="text-sm" data-testid="aggregate">
            <span className="text-slate-500">{task.aggregate.state}</span>
            {task.aggregate.value !== undefined ? <code className="ml-2 font-mono text-xs break-all">{preview(task.aggregate.value, 400)}</code> : null}
          </p>
        </Card>

        <Card aria-labelledby="errors-heading">
          <CardTitle id="errors-heading">Errors</CardTitle>
          {task.lastError ? (
            <div className="mb-3 rounded-lg bg-red-50 p-3 text-sm text-red-900" data-testid="last-error">
              <p className="font-medium">Last error, chunk {task.lastError.index} ({task.lastError.kind})</p>
              <pre className="mt-1 font-mono text-xs whitespace-pre-wrap break-words">{task.lastError.message}</pre>
            </div>
          ) : (
            <p className="mb-3 text-sm text-slate-500">No errors so far.</p>
          )}
          {counts.failed > 0 ? (
            <Button onClick={() => void loadFailed()} disabled={busy !== null}>{failed ? "Reload failed chunks" : "Show failed chunks"}</Button>
          ) : null}
          {failed ? (
            failed.length === 0 ? (
              <p className="mt-3 text-sm text-slate-500">No failed chunks.</p>
            ) : (
              <div className="relative mt-3 overflow-x-auto">
                <table className="w-full text-left text-sm" aria-label="Failed chunks">
                  <thead className="border-b border-slate-200 text-slate-500">
                    <tr><th scope="col" className="py-1 pr-3 font-medium">Chunk</th><th scope="col" className="py-1 pr-3 font-medium">Input</th><th scope="col" className="py-1 pr-3 font-medium">Attempts</th><th scope="col" className="py-1 font-medium">Error</th></tr>
                  </thead>
                  <tbody>
                    {failed.map((chunk) => (
                      <tr key={chunk.index} className="border-b border-slate-100 align-top">
                        <td className="py-1 pr-3 tabular-nums">{chunk.index}</td>
                        <td className="py-1 pr-3"><code className="font-mono text-xs break-all">{preview(chunk.input, 60)}</code></td>
                        <td className="py-1 pr-3 tabular-nums">{chunk.attempts ?? ""}</td>
                        <td className="py-1 text-red-800">{chunk.lastError ? <><strong>{chunk.lastError.kind}</strong>: {chunk.lastError.message}</> : null}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                {failed.length >= maxFailedShown ? <p className="mt-1 text-xs text-slate-500">The first {maxFailedShown}; download the results for all.</p> : null}
              </div>
            )
          ) : null}
        </Card>

        <Card aria-labelledby="details-heading">
          <CardTitle id="details-heading">Details</CardTitle>
          <dl className="grid grid-cols-[auto_minmax(0,1fr)] gap-x-4 gap-y-1 text-sm">
            <dt className="text-slate-500">Id</dt><dd className="font-mono text-xs break-all">{task.id}</dd>
            <dt className="text-slate-500">Created</dt><dd>{formatDate(task.createdAt)}</dd>
            {task.finishedAt ? (<><dt className="text-slate-500">Finished</dt><dd>{formatDate(task.finishedAt)}</dd></>) : null}
            <dt className="text-slate-500">Replication</dt><dd>{task.replication} (quorum {task.quorum})</dd>
            <dt className="text-slate-500">Timeout</dt><dd>{formatDuration(task.timeoutMs)} per chunk, {task.maxAttempts} {task.maxAttempts === 1 ? "attempt" : "attempts"}</dd>
            <dt className="text-slate-500">Priority</dt><dd>{task.priority}</dd>
            <dt className="text-slate-500">WebGPU</dt><dd>{task.requires.webgpu ? "required" : "no"}</dd>
            <dt className="text-slate-500">Code</dt><dd className="font-mono text-xs break-all">sha256 {task.codeSha256}</dd>
            {task.wasmSha256 ? (<><dt className="text-slate-500">Wasm</dt><dd className="font-mono text-xs break-all">sha256 {task.wasmSha256}</dd></>) : null}
            {task.allowUsers ? (<><dt className="text-slate-500">Allowed users</dt><dd className="font-mono text-xs break-all">{task.allowUsers.join(", ")}</dd></>) : null}
          </dl>
        </Card>
      </div>
    </>
  );
}
