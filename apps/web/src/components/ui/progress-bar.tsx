import type { Task } from "@crowdcompute/sdk";

/** Done (green), failed (red) and leased (blue, striped) shares of a task's chunks. */
export function TaskProgress({ task, label }: { task: Pick<Task, "counts">; label: string }) {
  const { total, done, failed, leased } = task.counts;
  const pct = (n: number) => (total > 0 ? (100 * n) / total : 0);
  const finished = done + failed;
  return (
    <div>
      <div
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={finished}
        aria-valuetext={`${finished} of ${total} chunks final (${failed} failed)`}
        className="flex h-2.5 w-full overflow-hidden rounded-full bg-slate-200"
      >
        <div className="bg-emerald-500" style={{ width: `${pct(done)}%` }} />
        <div className="bg-red-500" style={{ width: `${pct(failed)}%` }} />
        <div className="bg-brand-500/50" style={{ width: `${pct(leased)}%` }} />
      </div>
    </div>
  );
}
