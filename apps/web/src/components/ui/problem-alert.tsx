import type { Problem } from "@crowdcompute/sdk";

/** A server problem+json (or a client failure) shown where it happened. */
export function ProblemAlert({ problem, className = "" }: { problem: Problem | null | undefined; className?: string }) {
  if (!problem) return null;
  return (
    <div role="alert" className={`rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800 ${className}`}>
      <p className="font-semibold">
        {problem.title}
        {problem.status ? <span className="font-normal"> ({problem.status})</span> : null}
      </p>
      {problem.detail ? <p className="mt-1 break-words">{problem.detail}</p> : null}
      {problem.errors && problem.errors.length > 0 ? (
        <ul className="mt-1 list-disc pl-5">
          {problem.errors.map((issue) => (
            <li key={`${issue.path}:${issue.message}`}>
              <code>{issue.path}</code>: {issue.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
