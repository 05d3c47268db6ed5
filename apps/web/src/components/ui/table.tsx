import type { HTMLAttributes, ReactNode } from "react";

/** A header cell: its label (screen-reader only with `hidden`), and how it lines up. */
export type Column = string | { label: ReactNode; align?: "right"; className?: string; title?: string; hidden?: boolean };

/**
 * Every table of the app: scrolls sideways inside its card on a narrow screen, names itself for
 * screen readers (`label`), and draws its header from `columns`; the rows are the children
 * (`Row`). `dense` for tables inside a card's text; `tone` for one inside a coloured notice.
 */
export function Table({
  label,
  columns,
  children,
  minWidth,
  dense = false,
  tone = "slate",
  className = "",
}: {
  label: string;
  columns: Column[];
  children: ReactNode;
  /** A Tailwind min-width class, for tables whose columns should not be squeezed. */
  minWidth?: string;
  dense?: boolean;
  tone?: "slate" | "sky";
  className?: string;
}) {
  const pad = dense ? "py-1" : "py-2";
  return (
    <div className={`relative overflow-x-auto ${className}`}>
      <table className={`w-full ${minWidth ?? ""} text-left text-sm`} aria-label={label}>
        <thead className={tone === "sky" ? "border-b border-sky-200 text-sky-800" : "border-b border-slate-200 text-slate-500"}>
          <tr>
            {columns.map((column, i) => {
              const { label: text, align, className: extra = "", title, hidden } = typeof column === "string" ? { label: column } : column;
              const last = i === columns.length - 1;
              return (
                // biome-ignore lint/suspicious/noArrayIndexKey: a table's columns are fixed for its life
                <th key={i} scope="col" title={title} className={`${extra} ${pad} ${last ? "" : "pr-3"} ${align === "right" ? "text-right" : ""} font-medium`}>
                  {hidden ? <span className="sr-only">{text}</span> : text}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A body row: a rule under it, cells at the top unless `middle`. */
export function Row({ tone = "slate", middle = false, className = "", ...props }: HTMLAttributes<HTMLTableRowElement> & { tone?: "slate" | "sky"; middle?: boolean; "data-testid"?: string }) {
  return <tr className={`border-b ${tone === "sky" ? "border-sky-100" : "border-slate-100"} ${middle ? "" : "align-top"} ${className}`} {...props} />;
}
