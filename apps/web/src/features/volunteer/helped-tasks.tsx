// The volunteer page's card of the tasks this browser worked for, each with a way to skip it,
// and of the tasks and creators it skips.
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { useNow } from "../../hooks/use-polled.ts";
import { formatAgo, plural } from "../../lib/format.ts";
import type { ExclusionList, useExclusions } from "./use-exclusions.ts";
import type { TaskRecord, useTotals } from "./use-totals.ts";

/** "Tasks you are working for" lists the tasks of the last week, the most recent few. */
const recentTasksShown = 5;
const recentMs = 7 * 86_400_000;

/** The tasks of the last week this browser computed for, each with a way to skip it or its creator. */
export function HelpedTasks({ totals, exclusions }: { totals: ReturnType<typeof useTotals>; exclusions: ReturnType<typeof useExclusions> }) {
  const now = useNow(60_000);
  const recentTasks = totals.tasks.filter((task) => now - task.lastAt < recentMs).slice(0, recentTasksShown);
  const olderTasks = totals.tasks.length - recentTasks.length;
  return (
    <Card aria-labelledby="helped-heading">
      <CardTitle id="helped-heading">Tasks you are working for</CardTitle>
      {recentTasks.length > 0 ? (
        <ul className="flex flex-col gap-2 text-sm">
          {recentTasks.map((task: TaskRecord) => {
            const taskId = task.id;
            const about = task.name !== null && task.creatorId !== null ? { name: task.name, description: task.description, creator: task.creator, creatorId: task.creatorId } : undefined;
            const label = about?.name ?? `task ${taskId.slice(0, 8)}`;
            const excluded = exclusions.ids.tasks.includes(taskId) || (about ? exclusions.ids.creators.includes(about.creatorId) : false);
            return (
              <li key={taskId} className="flex justify-between gap-3" data-testid="helped-task" data-task-id={taskId} data-excluded={excluded}>
                <span className="min-w-0">
                  {about ? (
                    <span className="font-medium">{about.name}</span>
                  ) : (
                    <code className="font-mono text-xs" title={taskId}>
                      {label}
                    </code>
                  )}
                  {about ? <span className="text-xs text-slate-500"> by {about.creator ?? "an unnamed creator"}</span> : null}
                  {about?.description ? <span className="block truncate text-xs text-slate-500">{about.description}</span> : null}
                  {excluded ? (
                    <span className="block text-xs text-slate-500">Skipped: no new chunks of it.</span>
                  ) : (
                    <span className="mt-1 flex flex-wrap gap-x-3 text-xs">
                      <button
                        type="button"
                        className="text-slate-600 underline hover:text-slate-900"
                        aria-label={`Skip task ${label}`}
                        data-testid="exclude-task"
                        onClick={() => exclusions.add("tasks", { id: taskId, name: label })}
                      >
                        Skip this task
                      </button>
                      {about ? (
                        <button
                          type="button"
                          className="text-slate-600 underline hover:text-slate-900"
                          aria-label={`Skip all tasks by ${creatorLabel(about.creator, about.creatorId)}`}
                          data-testid="exclude-creator"
                          onClick={() => exclusions.add("creators", { id: about.creatorId, name: creatorLabel(about.creator, about.creatorId) })}
                        >
                          Skip all by this creator
                        </button>
                      ) : null}
                    </span>
                  )}
                </span>
                <span className="shrink-0 text-right tabular-nums">
                  {plural(task.chunks, "chunk")}
                  <span className="block text-xs text-slate-500">{formatAgo(now - task.lastAt)}</span>
                </span>
              </li>
            );
          })}
        </ul>
      ) : (
        <p className="text-sm text-slate-500">Tasks show up here once this browser computes their chunks.</p>
      )}
      {olderTasks > 0 ? <p className="mt-2 text-xs text-slate-500">and {plural(olderTasks, "earlier task")}</p> : null}
      <ExclusionsList list={exclusions.list} onUndo={exclusions.remove} />
    </Card>
  );
}

/** A creator in the list of skipped ones: its display name, or a short id to tell unnamed ones apart. */
function creatorLabel(name: string | null, id: string): string {
  return name ?? `unnamed creator ${id.slice(0, 8)}`;
}

/** The tasks and creators this browser skips, each with a way back. */
function ExclusionsList({ list, onUndo }: { list: ExclusionList; onUndo: (kind: keyof ExclusionList, id: string) => void }) {
  const items = [...list.tasks.map((item) => ({ kind: "tasks" as const, ...item })), ...list.creators.map((item) => ({ kind: "creators" as const, ...item }))];
  if (items.length === 0) return null;
  return (
    <section aria-labelledby="excluded-heading" className="mt-4 border-t border-slate-100 pt-3">
      <h3 id="excluded-heading" className="mb-1 text-sm font-semibold text-slate-700">
        Skipped
      </h3>
      <ul className="flex flex-col gap-1 text-sm">
        {items.map(({ kind, id, name }) => (
          <li key={`${kind}:${id}`} className="flex justify-between gap-3" data-testid="exclusion" data-kind={kind === "tasks" ? "task" : "creator"} data-id={id}>
            <span className="min-w-0 truncate">{kind === "tasks" ? name : `all tasks by ${name}`}</span>
            <button
              type="button"
              className="shrink-0 text-xs text-slate-600 underline hover:text-slate-900"
              aria-label={`Work for ${kind === "tasks" ? name : `tasks by ${name}`} again`}
              data-testid="undo-exclusion"
              onClick={() => onUndo(kind, id)}
            >
              Undo
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
