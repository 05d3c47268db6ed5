// The new-task page's cards (new-task-page.tsx lays them out); the form's state and checks are
// use-task-form.ts's, so each card only shows its part and hands back what is typed.
import type { Client, Problem } from "@crowdcompute/sdk";
import { lazy, type ReactNode, Suspense, useId, useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { Field, FieldError, inputClass } from "../../components/ui/field.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { plural } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { exampleCode } from "./example-code.ts";
import { chunkCount, chunkInput } from "./task-inputs.ts";
import { type TestRunReport, useTestRunner } from "./test-run.ts";
import { TestRunResults } from "./test-run-results.tsx";
import type { Errors, TaskForm } from "./use-task-form.ts";

// CodeMirror is most of this page's weight (~500 KB): it loads beside the page, which shows the
// code meanwhile.
const CodeEditor = lazy(async () => ({ default: (await import("./code-editor.tsx")).CodeEditor }));

/** Name and description. */
export function AboutCard({ form: { values, set, errors } }: { form: TaskForm }) {
  const ids = { description: useId() };
  return (
    <Card aria-labelledby="about-heading">
      <CardTitle id="about-heading">About</CardTitle>
      <div className="grid gap-4">
        <Field label="Name" value={values.name} onChange={(e) => set("name", e.target.value)} error={errors.name} maxLength={200} />
        <div>
          <label htmlFor={ids.description} className="mb-1 block text-sm font-medium text-slate-700">
            Description <span className="font-normal text-slate-500">(shown to volunteers)</span>
          </label>
          <textarea id={ids.description} className={inputClass} rows={2} value={values.description} onChange={(e) => set("description", e.target.value)} maxLength={10_000} />
        </div>
      </div>
    </Card>
  );
}

/** The work code, from the editor or a file, and its optional WebAssembly module. */
export function CodeCard({ form: { values, set, errors, onCodeFile, onWasmFile, cloneSource } }: { form: TaskForm }) {
  const ids = { code: useId(), wasm: useId() };
  return (
    <Card aria-labelledby="code-heading">
      <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
        <h2 id="code-heading" className="text-lg font-semibold">
          Work code
        </h2>
        <div className="flex flex-wrap gap-2">
          <label className="cursor-pointer rounded-lg border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100 focus-within:outline-3 focus-within:outline-brand-500/60">
            Load a .js file
            <input type="file" accept=".js,.mjs,text/javascript" className="sr-only" onChange={(e) => void onCodeFile(e.target.files?.[0])} />
          </label>
          <Button className="!px-3 !py-1.5" onClick={() => set("code", exampleCode)}>
            Use the example
          </Button>
        </div>
      </div>
      <p id={`${ids.code}-hint`} className="mb-2 text-sm text-slate-600">
        An ES module whose <code>default</code> export gets each chunk's input and returns its result (JSON). An optional <code>reduce(results)</code> export makes one aggregate.
      </p>
      <Suspense
        fallback={
          <pre
            className="max-h-[32rem] min-h-[16rem] overflow-auto rounded-lg border border-slate-300 bg-slate-50 p-3 font-mono text-sm text-slate-500"
            role="status"
            aria-busy="true"
            aria-label="Loading the code editor"
          >
            {values.code}
          </pre>
        }
      >
        <CodeEditor value={values.code} onChange={(code) => set("code", code)} label="Work code" invalid={Boolean(errors.code)} describedBy={errors.code ? `${ids.code}-error` : `${ids.code}-hint`} />
      </Suspense>
      {errors.code ? <FieldError id={`${ids.code}-error`}>{errors.code}</FieldError> : null}
      <div className="mt-4">
        <label htmlFor={ids.wasm} className="mb-1 block text-sm font-medium text-slate-700">
          WebAssembly module <span className="font-normal text-slate-500">(optional, .wasm or .wat text; becomes ctx.wasm)</span>
        </label>
        <input
          id={ids.wasm}
          type="file"
          accept=".wasm,.wat,application/wasm"
          className="block w-full text-sm file:mr-3 file:rounded-md file:border file:border-slate-300 file:bg-white file:px-3 file:py-1.5"
          aria-invalid={errors.wasm ? true : undefined}
          aria-describedby={errors.wasm ? `${ids.wasm}-error` : undefined}
          onChange={(e) => void onWasmFile(e.target.files?.[0])}
        />
        {errors.wasm ? (
          <FieldError id={`${ids.wasm}-error`}>{errors.wasm}</FieldError>
        ) : values.wasm ? (
          <p className="mt-1 text-xs text-slate-500" data-testid="wasm-summary">
            {values.wasm.name}, {plural(values.wasm.bytes.length, "byte")}
            {/\.wat$/i.test(values.wasm.name) ? " (compiled from WebAssembly text)" : ""}
          </p>
        ) : cloneSource?.wasmSha256 ? (
          <p className="mt-1 text-xs text-slate-500">The copy keeps the module of “{cloneSource.name}” unless you choose another.</p>
        ) : null}
      </div>
    </Card>
  );
}

/** The inputs: a JSON array typed in, a JSON or NDJSON file, a range, or a clone's own. */
export function InputsCard({ form: { values, set, errors, onInputsFile, cloneOf, inputsSummary } }: { form: TaskForm }) {
  const ids = { inputs: useId(), file: useId() };
  const { range } = values;
  return (
    <Card aria-labelledby="inputs-heading">
      <CardTitle id="inputs-heading">Inputs</CardTitle>
      <fieldset>
        <legend className="sr-only">How the inputs are given</legend>
        <div className="mb-4 flex flex-wrap gap-4 text-sm">
          {([...(cloneOf ? ([["same", "Same inputs as the original"]] as const) : []), ["array", "JSON array"], ["file", "File (JSON or NDJSON)"], ["range", "Range of integers"]] as const).map(
            ([value, text]) => (
              <label key={value} className="flex items-center gap-2">
                <input type="radio" name="inputs-mode" value={value} checked={values.mode === value} onChange={() => set("mode", value)} />
                {text}
              </label>
            ),
          )}
        </div>
      </fieldset>
      {values.mode === "same" ? (
        <p className="text-sm text-slate-600">The server copies them from the original when the copy is saved; the test run reads its first chunks from there.</p>
      ) : values.mode === "array" ? (
        <div>
          <label htmlFor={ids.inputs} className="mb-1 block text-sm font-medium text-slate-700">
            Inputs (JSON array, one element per chunk)
          </label>
          <textarea
            id={ids.inputs}
            className={`${inputClass} font-mono`}
            rows={4}
            value={values.arrayText}
            onChange={(e) => set("arrayText", e.target.value)}
            aria-invalid={errors.inputs ? true : undefined}
            aria-describedby={errors.inputs ? `${ids.inputs}-error` : undefined}
            spellCheck={false}
          />
          {errors.inputs ? <FieldError id={`${ids.inputs}-error`}>{errors.inputs}</FieldError> : null}
        </div>
      ) : values.mode === "file" ? (
        <div>
          <label htmlFor={ids.file} className="mb-1 block text-sm font-medium text-slate-700">
            Inputs file: a JSON array, or NDJSON (one JSON value per line)
          </label>
          <input
            id={ids.file}
            type="file"
            accept=".json,.ndjson,.jsonl,application/json,application/x-ndjson"
            className="block w-full text-sm file:mr-3 file:rounded-md file:border file:border-slate-300 file:bg-white file:px-3 file:py-1.5"
            aria-invalid={errors.inputs ? true : undefined}
            aria-describedby={errors.inputs ? `${ids.file}-error` : undefined}
            onChange={(e) => void onInputsFile(e.target.files?.[0])}
          />
          {errors.inputs ? <FieldError id={`${ids.file}-error`}>{errors.inputs}</FieldError> : null}
        </div>
      ) : (
        <div>
          <div className="grid grid-cols-2 gap-4 sm:grid-cols-4">
            <Field label="Start" inputMode="numeric" value={range.start} onChange={(e) => set("range", { ...range, start: e.target.value })} error={errors["range.start"]} />
            <Field label="End (exclusive)" inputMode="numeric" value={range.end} onChange={(e) => set("range", { ...range, end: e.target.value })} error={errors["range.end"]} />
            <Field label="Step" inputMode="numeric" value={range.step} onChange={(e) => set("range", { ...range, step: e.target.value })} error={errors["range.step"]} />
            <Field label="Numbers per chunk" inputMode="numeric" value={range.size} onChange={(e) => set("range", { ...range, size: e.target.value })} error={errors["range.size"]} />
          </div>
          <p className="mt-2 text-xs text-slate-500">
            Each chunk gets <code>{"{ start, end, step }"}</code>: a slice of the range.
          </p>
          {errors.range || errors.inputs ? <FieldError>{errors.range ?? errors.inputs}</FieldError> : null}
        </div>
      )}
      {inputsSummary ? (
        <p className="mt-2 text-sm text-slate-600" data-testid="inputs-summary">
          {inputsSummary}
        </p>
      ) : null}
    </Card>
  );
}

/**
 * The first chunks in this browser's own sandbox, as a volunteer would run them: nothing is sent.
 * What stops the run is said in this card too, not only next to its field.
 */
export function TestRunCard({ client, form }: { client: Client; form: TaskForm }) {
  const testRunner = useTestRunner(client);
  const [testCount, setTestCount] = useState("3");
  const [testing, setTesting] = useState(false);
  const [report, setReport] = useState<(TestRunReport & { ranWith: string }) | null>(null);
  const [testProblem, setTestProblem] = useState<Problem | null>(null);
  const [progress, setProgress] = useState<Record<string, { fraction: number; message?: string | undefined }>>({});

  const testRun = async () => {
    const { mode, code, wasm } = form.values;
    const out: Errors = {};
    form.checkCode(out);
    const inputsSource = mode === "same" ? null : form.readInputs(out);
    const opts = form.readOptions(out);
    const n = Number(testCount);
    if (!Number.isInteger(n) || n < 1 || n > 100) out.testCount = "Between 1 and 100 chunks.";
    form.setErrors(out);
    const blocking = Object.entries(out);
    setTestProblem(
      blocking.length > 0
        ? {
            type: "about:blank",
            title: out.inputs ? "The inputs are not valid" : "The test run needs a valid form",
            status: 0,
            detail: out.inputs ?? blocking.map(([, message]) => message).join(" "),
          }
        : null,
    );
    if (blocking.length > 0 || (mode !== "same" && !inputsSource)) return;
    setTesting(true);
    setReport(null);
    try {
      let inputs: { index: number; input: unknown }[];
      if (mode === "same" && form.cloneOf) {
        // The first chunks of the task this is a copy of, as the server derives them.
        const page = await client.listChunks(form.cloneOf, { limit: n });
        inputs = page.items.map((chunk) => ({ index: chunk.index, input: chunk.input }));
      } else {
        const count = Math.min(n, chunkCount(inputsSource!));
        inputs = Array.from({ length: count }, (_, index) => ({ index, input: chunkInput(inputsSource!, index) }));
      }
      const ranWith = form.runKey;
      setProgress({});
      const onProgress = ({ key, fraction, message }: { key: string; fraction: number; message?: string }) => setProgress((p) => ({ ...p, [key]: { fraction, message } }));
      setReport({ ...(await testRunner.run({ code, wasm: wasm?.bytes ?? null, webgpu: opts.requires.webgpu, timeoutMs: opts.timeoutMs, inputs, onProgress })), ranWith });
    } catch (error) {
      setTestProblem({ ...problemOf(error), title: "The test run could not start" });
    } finally {
      setTesting(false);
    }
  };

  return (
    <Card aria-labelledby="test-heading">
      <CardTitle id="test-heading">Test run</CardTitle>
      <p className="mb-3 text-sm text-slate-600">Runs the first chunks in this browser's own sandbox, exactly as a volunteer would, and sends nothing to the server.</p>
      <div className="flex flex-wrap items-end gap-3">
        <Field label="Chunks to test" className="w-36" inputMode="numeric" value={testCount} onChange={(e) => setTestCount(e.target.value)} error={form.errors.testCount} />
        <Button onClick={() => void testRun()} disabled={testing}>
          {testing ? "Running…" : "Test run"}
        </Button>
        {testing ? (
          <Button variant="danger" onClick={() => void testRunner.stop()}>
            Stop
          </Button>
        ) : null}
      </div>
      {testing && Object.keys(progress).length > 0 ? (
        <ul className="mt-3 flex flex-col gap-1 text-sm" aria-label="Test run progress">
          {Object.entries(progress).map(([key, p]) => (
            <li key={key} className="flex items-center gap-3">
              <span className="w-20 shrink-0 tabular-nums">Chunk {key}</span>
              <progress className="h-2 w-32" max={1} value={p.fraction} aria-label={`Chunk ${key}`} />
              <span className="truncate text-slate-600">{p.message ?? `${Math.round(p.fraction * 100)} %`}</span>
            </li>
          ))}
        </ul>
      ) : null}
      <ProblemAlert problem={testProblem} className="mt-3" />
      {report && report.ranWith !== form.runKey ? (
        <p role="status" className="mt-3 text-sm text-amber-800">
          The code, inputs or options changed since this run: run it again to check them.
        </p>
      ) : null}
      {report ? <TestRunResults report={report} /> : null}
    </Card>
  );
}

/** Publish (the form's submit) or save as a draft; `warning`: what volunteers online cannot do. */
export function PublishCard({ warning, publishing, problem, onDraft }: { warning: ReactNode; publishing: string | null; problem: Problem | null; onDraft: () => void }) {
  return (
    <Card aria-labelledby="publish-heading" className="lg:sticky lg:top-20">
      <CardTitle id="publish-heading">Publish</CardTitle>
      <div className="flex flex-col gap-2">
        {warning ? (
          <p role="status" className="rounded-lg border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900" data-testid="volunteers-warning">
            {warning}
          </p>
        ) : null}
        <Button type="submit" variant="primary" disabled={publishing !== null}>
          {publishing ?? "Publish and start"}
        </Button>
        <Button onClick={onDraft} disabled={publishing !== null}>
          Save as draft
        </Button>
      </div>
      <ProblemAlert problem={problem} className="mt-3" />
    </Card>
  );
}
