import { type FormEvent, useState } from "react";
import { Link } from "react-router";
import { Button, buttonClass } from "../../components/ui/button.tsx";
import { Card } from "../../components/ui/card.tsx";
import { inputClass } from "../../components/ui/field.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { TaskProgress } from "../../components/ui/progress-bar.tsx";
import { StatusBadge } from "../../components/ui/status-badge.tsx";
import { formatDate, formatNumber, formatRate, plural } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";
import { useTaskList } from "./task-api.ts";

/** `/tasks`: the creator's tasks (an admin's: everyone's), refreshed live. */
export function TaskListPage() {
  const { isAdmin, session } = useSession();
  const tasks = useTaskList();
  const { items } = tasks;
  return (
    <>
      <PageHeader
        title="Tasks"
        description={isAdmin ? "Every creator's tasks, newest first." : "Your tasks, newest first. Figures refresh every two seconds."}
        actions={
          <Link to="/tasks/new" className={buttonClass("primary")}>
            New task
          </Link>
        }
      />
      {session?.user.status === "pending" ? (
        <p role="status" className="mb-4 rounded-lg border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
          Your account waits for an administrator's approval: you can prepare and test-run tasks, and publish them once approved.
        </p>
      ) : session?.user.status === "suspended" ? (
        <p role="status" className="mb-4 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-900">
          Your account is suspended: your tasks are not served to volunteers.
        </p>
      ) : null}
      {session && session.user.name === null ? <NameNotice /> : null}
      {tasks.error ? <ProblemAlert problem={problemOf(tasks.error)} className="mb-4" /> : null}
      {tasks.isPending ? <p className="text-slate-500">Loading…</p> : null}
      {tasks.isSuccess && items.length === 0 ? (
        <Card>
          <p className="text-slate-600">
            No tasks yet.{" "}
            <Link to="/tasks/new" className="font-medium text-brand-700 underline">
              Create your first task
            </Link>
            : write a work function, test it here, publish it.
          </p>
        </Card>
      ) : null}
      {items.length > 0 ? (
        <ul className="flex flex-col gap-3" aria-label="Tasks">
          {items.map((task) => {
            const final = task.counts.done + task.counts.failed;
            return (
              <li key={task.id}>
                <Card className="!p-4">
                  <div className="mb-2 flex flex-wrap items-center justify-between gap-2">
                    <div className="flex min-w-0 items-center gap-3">
                      <Link to={`/tasks/${task.id}`} className="truncate font-semibold text-brand-700 hover:underline">
                        {task.name}
                      </Link>
                      <StatusBadge task={task} />
                    </div>
                    <span className="text-sm text-slate-500">{formatDate(task.createdAt)}</span>
                  </div>
                  <TaskProgress task={task} label={`Progress of ${task.name}`} />
                  <div className="mt-2 flex flex-wrap gap-x-5 gap-y-1 text-sm text-slate-600 tabular-nums">
                    <span>
                      {formatNumber(final)} / {plural(task.counts.total, "chunk")}
                    </span>
                    {task.counts.failed > 0 ? <span className="text-red-700">{formatNumber(task.counts.failed)} failed</span> : null}
                    {task.counts.leased > 0 ? <span>{formatNumber(task.counts.leased)} with volunteers</span> : null}
                    {task.counts.awaitingCopy > 0 ? <span className="text-sky-800">{plural(task.counts.awaitingCopy, "chunk")} waiting for another volunteer</span> : null}
                    {task.status === "running" ? <span>{formatRate(task.chunksPerSec)}</span> : null}
                  </div>
                </Card>
              </li>
            );
          })}
        </ul>
      ) : null}
      {tasks.hasNextPage ? (
        <div className="mt-4 text-center">
          <Button onClick={() => void tasks.fetchNextPage()} disabled={tasks.isFetchingNextPage}>
            {tasks.isFetchingNextPage ? "Loading…" : "Show older tasks"}
          </Button>
        </div>
      ) : null}
    </>
  );
}

/**
 * A creator with no display name (an account registered from the CLI, or without one): its
 * volunteers see its tasks as by "an unnamed creator" until it gives one here.
 */
function NameNotice() {
  const { client, session, signIn } = useSession();
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (!session || name.trim() === "") return;
    setSaving(true);
    try {
      const user = await client.setDisplayName(name.trim());
      signIn({ ...session, user: { ...session.user, ...user } });
    } catch (failure) {
      setError(failure);
    } finally {
      setSaving(false);
    }
  };
  return (
    <form onSubmit={save} className="mb-4 rounded-lg border border-sky-200 bg-sky-50 p-3 text-sm text-sky-900" data-testid="name-notice">
      <p>Volunteers see your tasks as by “an unnamed creator”. Give them a name to see (never your email):</p>
      <div className="mt-2 flex flex-wrap gap-2">
        <input aria-label="Your name for volunteers" className={`${inputClass} !w-64`} value={name} maxLength={100} onChange={(event) => setName(event.target.value)} />
        <Button type="submit" disabled={saving || name.trim() === ""}>
          Save name
        </Button>
      </div>
      {error ? <ProblemAlert problem={problemOf(error)} className="mt-2" /> : null}
    </form>
  );
}
