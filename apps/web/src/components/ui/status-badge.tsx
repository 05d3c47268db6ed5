import type { Task, TaskStatus } from "@crowdcompute/sdk";

const styles: Record<TaskStatus | "done with failures", string> = {
  draft: "bg-slate-100 text-slate-700",
  running: "bg-brand-100 text-brand-700",
  paused: "bg-amber-100 text-amber-800",
  done: "bg-emerald-100 text-emerald-800",
  "done with failures": "bg-amber-100 text-amber-900",
  failed: "bg-red-100 text-red-800",
  cancelled: "bg-slate-200 text-slate-600",
};

/** The status as a person reads it: a task that ended with failed chunks is not a plain "done". */
export function statusLabel(task: Pick<Task, "status" | "counts">): TaskStatus | "done with failures" {
  return task.status === "done" && task.counts.failed > 0 ? "done with failures" : task.status;
}

export function StatusBadge({ task }: { task: Pick<Task, "status" | "counts"> }) {
  const label = statusLabel(task);
  return (
    <span className={`inline-block rounded-full px-2.5 py-0.5 text-xs font-semibold whitespace-nowrap ${styles[label]}`} data-testid="task-status" data-status={task.status}>
      {label}
    </span>
  );
}
