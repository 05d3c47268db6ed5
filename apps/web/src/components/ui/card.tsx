import type { HTMLAttributes, ReactNode } from "react";

export function Card({ className = "", ...props }: HTMLAttributes<HTMLElement>) {
  return <section className={`min-w-0 rounded-xl border border-slate-200 bg-white p-4 shadow-sm sm:p-6 ${className}`} {...props} />;
}

export function CardTitle({ children, id }: { children: ReactNode; id?: string }) {
  return (
    <h2 id={id} className="mb-3 text-lg font-semibold text-slate-900">
      {children}
    </h2>
  );
}

/**
 * A figure with its label; `raw` is the number behind the text, for scripts (as `data-value`),
 * and `ms` the same for a duration (`data-ms`). Neither line wraps: a figure too wide for its
 * card is cut with an ellipsis and shown whole on hover.
 */
export function Stat({ label, value, testId, hint, raw, ms }: { label: string; value: ReactNode; testId?: string; hint?: string; raw?: number; ms?: number | "" }) {
  return (
    <div className="min-w-0 rounded-xl border border-slate-200 bg-white p-4 shadow-sm">
      <span className="block truncate text-sm text-slate-500" title={label}>
        {label}
      </span>
      <strong
        className="mt-1 block truncate text-lg font-semibold whitespace-nowrap tabular-nums sm:text-xl"
        data-testid={testId}
        data-value={raw}
        data-ms={ms}
        title={hint ?? (typeof value === "string" ? value : undefined)}
      >
        {value}
      </strong>
    </div>
  );
}
