import type { TaskStatus } from "@crowdcompute/sdk";

const styles: Record<TaskStatus, string> = {
  draft: "bg-slate-100 text-slate-700",
  running: "bg-brand-100 text-brand-700",
  paused: "bg-amber-100 text-amber-800",
  done: "bg-emerald-100 text-emerald-800",
  failed: "bg-red-100 text-red-800",
  cancelled: "bg-slate-200 text-slate-600",
};

export function StatusBadge({ status }: { status: TaskStatus }) {
  return <span className={`inline-block rounded-full px-2.5 py-0.5 text-xs font-semibold ${styles[status]}`} data-testid="task-status">{status}</span>;
}
