import { Card, CardTitle } from "../../components/ui/card.tsx";
import { Field } from "../../components/ui/field.tsx";
import type { TaskOptionsForm } from "./task-options.ts";

/** Replication, quorum, tolerance, timeout, memory, attempts, priority, WebGPU and the allow-list. */
export function OptionsCard({
  options,
  setOption,
  errors,
}: {
  options: TaskOptionsForm;
  setOption: <K extends keyof TaskOptionsForm>(key: K, value: TaskOptionsForm[K]) => void;
  errors: Record<string, string>;
}) {
  return (
    <Card aria-labelledby="options-heading">
      <CardTitle id="options-heading">Options</CardTitle>
      <div className="grid grid-cols-2 gap-4 lg:grid-cols-1">
        <Field
          label="Replication"
          inputMode="numeric"
          value={options.replication}
          onChange={(e) => setOption("replication", e.target.value)}
          error={errors.replication}
          hint="Copies of each chunk, on distinct volunteers."
        />
        <Field label="Quorum" inputMode="numeric" value={options.quorum} onChange={(e) => setOption("quorum", e.target.value)} error={errors.quorum} hint="Matching copies needed." />
        <Field
          label="Spot check"
          inputMode="decimal"
          value={options.spotCheck}
          onChange={(e) => setOption("spotCheck", e.target.value)}
          error={errors.spotCheck}
          hint="Share of trusted volunteers' blocks copied; 1: every block."
        />
        <Field
          label="Tolerance, absolute (optional)"
          inputMode="decimal"
          value={options.toleranceAbs}
          onChange={(e) => setOption("toleranceAbs", e.target.value)}
          error={errors.toleranceAbs}
          hint="Copies match when numbers differ by at most this."
        />
        <Field
          label="Tolerance, relative (optional)"
          inputMode="decimal"
          value={options.toleranceRel}
          onChange={(e) => setOption("toleranceRel", e.target.value)}
          error={errors.toleranceRel}
          hint="Or by at most this share of the larger. Both empty: exact."
        />
        <Field label="Timeout per chunk (s)" inputMode="decimal" value={options.timeoutSec} onChange={(e) => setOption("timeoutSec", e.target.value)} error={errors.timeoutMs} />
        <Field
          label="Memory per worker (MiB)"
          inputMode="numeric"
          value={options.memoryMb}
          onChange={(e) => setOption("memoryMb", e.target.value)}
          error={errors.memoryMb}
          hint="A chunk that needs more fails as out of memory."
        />
        <Field label="Attempts" inputMode="numeric" value={options.maxAttempts} onChange={(e) => setOption("maxAttempts", e.target.value)} error={errors.maxAttempts} hint="Before a chunk fails." />
        <Field
          label="Priority"
          inputMode="numeric"
          value={options.priority}
          onChange={(e) => setOption("priority", e.target.value)}
          error={errors.priority}
          hint="Orders your own tasks; -1000 to 1000."
        />
        <label className="col-span-2 flex items-center gap-2 text-sm lg:col-span-1">
          <input type="checkbox" checked={options.webgpu} onChange={(e) => setOption("webgpu", e.target.checked)} />
          Needs WebGPU (ctx.gpu)
        </label>
        <div className="col-span-2 lg:col-span-1">
          <Field
            label="Only these users' volunteers (optional)"
            value={options.allowUsers}
            onChange={(e) => setOption("allowUsers", e.target.value)}
            error={errors.allowUsers}
            hint="User ids, separated by commas."
          />
        </div>
      </div>
    </Card>
  );
}
