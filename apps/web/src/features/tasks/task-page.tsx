import { Link, useParams } from "react-router";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { statusLabel } from "../../components/ui/status-badge.tsx";
import { problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";
import { ConsoleOutput, RunningChunks } from "./chunk-activity.tsx";
import { LiveResults } from "./live-results.tsx";
import { useLiveTask } from "./task-api.ts";
import { DetailsCard, ErrorsCard, ProgressCard, ResultsCard } from "./task-cards.tsx";
import { TaskHeader } from "./task-header.tsx";
import { ThroughputChart } from "./throughput-chart.tsx";
import { useTaskActions } from "./use-task-actions.ts";
import { WhyWaiting } from "./why-waiting.tsx";

/**
 * `/tasks/:id`: live progress over SSE, throughput, errors, results, lifecycle. The header and
 * cards are task-header.tsx's and task-cards.tsx's; the chunks running now and the console,
 * chunk-activity.tsx's; what the buttons do, use-task-actions.ts's.
 */
export function TaskPage() {
  const { id = "" } = useParams();
  const { client, session } = useSession();
  const token = session?.token ?? "";
  const live = useLiveTask(client, id);
  const { task } = live;
  const actions = useTaskActions(live.setTask);

  if (!task) {
    return live.error ? (
      <>
        <PageHeader title="Task" />
        <ProblemAlert problem={problemOf(live.error)} />
        <p className="mt-4">
          <Link to="/tasks" className="text-brand-700 underline">
            Back to tasks
          </Link>
        </p>
      </>
    ) : (
      <p className="text-slate-500">Loading…</p>
    );
  }

  return (
    <>
      <TaskHeader client={client} token={token} task={task} actions={actions} refresh={live.refresh} />
      <ProblemAlert problem={actions.problem} className="mb-4" />
      {actions.notice ? (
        <p role="status" className="mb-4 rounded-lg border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900" data-testid="action-notice">
          {actions.notice}
        </p>
      ) : null}
      {/* Announced once per change of status, not at every count. */}
      <span className="sr-only" role="status">{`Task ${statusLabel(task)}`}</span>
      {live.error && task ? (
        <p role="status" className="mb-4 text-sm text-amber-800">
          Live updates interrupted ({problemOf(live.error).detail}); reconnecting…
        </p>
      ) : null}

      <ProgressCard task={task} connected={live.connected} />

      <WhyWaiting client={client} task={task} />

      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <RunningChunks client={client} task={task} running={live.running} />
        <ConsoleOutput client={client} task={task} tail={live.consoleTail} />

        <Card aria-labelledby="chart-heading">
          <CardTitle id="chart-heading">Throughput</CardTitle>
          <ThroughputChart client={client} task={task} />
        </Card>

        <ResultsCard client={client} task={task} actions={actions} />

        <LiveResults client={client} task={task} />

        <ErrorsCard client={client} task={task} actions={actions} />

        <DetailsCard task={task} />
      </div>
    </>
  );
}
