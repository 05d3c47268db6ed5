import type { ReactNode } from "react";

/** The page's heading (and the document's title: `docTitle`, else `title` when it is text). */
export function PageHeader({ title, docTitle, description, actions }: { title: ReactNode; docTitle?: string; description?: ReactNode; actions?: ReactNode }) {
  const text = docTitle ?? (typeof title === "string" ? title : null);
  return (
    <div className="mb-6 flex flex-wrap items-start justify-between gap-4">
      {text ? <title>{`${text} · CrowdCompute`}</title> : null}
      <div className="min-w-0">
        <h1 className="text-2xl font-bold tracking-tight break-words sm:text-3xl">{title}</h1>
        {description ? <div className="mt-1 text-slate-600">{description}</div> : null}
      </div>
      {actions ? <div className="flex flex-wrap gap-2">{actions}</div> : null}
    </div>
  );
}
