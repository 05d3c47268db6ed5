import type { HTMLAttributes, ReactNode } from "react";

export function Card({ className = "", ...props }: HTMLAttributes<HTMLElement>) {
  return <section className={`min-w-0 rounded-xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6 ${className}`} {...props} />;
}

export function CardTitle({ children, id }: { children: ReactNode; id?: string }) {
  return <h2 id={id} className="mb-3 text-lg font-semibold text-slate-900">{children}</h2>;
}

/** A figure with its label: `<Stat label="Chunks done" value={12} />`. */
export function Stat({ label, value, testId, hint }: { label: string; value: ReactNode; testId?: string; hint?: string }) {
  return (
    <div className="rounded-xl border border-slate-200 bg-white p-4 shadow-sm">
      <span className="block text-sm text-slate-500">{label}</span>
      <strong className="mt-1 block text-xl font-semibold tabular-nums" data-testid={testId} title={hint}>
        {value}
      </strong>
    </div>
  );
}
