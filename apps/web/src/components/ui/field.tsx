import { type InputHTMLAttributes, type ReactNode, useId } from "react";

export const inputClass = "block w-full rounded-lg border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm aria-invalid:border-red-500 aria-invalid:ring-1 aria-invalid:ring-red-500";

/** A labelled input with its hint and inline error (tied by aria-describedby). */
export function Field({ label, error, hint, className = "", ...props }: InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string | undefined; hint?: ReactNode }) {
  const id = useId();
  return (
    <div className={className}>
      <label htmlFor={id} className="mb-1 block text-sm font-medium text-slate-700">
        {label}
      </label>
      <input id={id} className={inputClass} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined} {...props} />
      {error ? (
        <FieldError id={`${id}-error`}>{error}</FieldError>
      ) : hint ? (
        <p id={`${id}-hint`} className="mt-1 text-xs text-slate-500">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function FieldError({ id, children }: { id?: string; children: ReactNode }) {
  return (
    <p id={id} className="mt-1 text-sm text-red-700">
      {children}
    </p>
  );
}
