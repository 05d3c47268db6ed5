import { ApiError, type NewTask, type Problem, type Task } from "@crowdcompute/sdk";
import { useId, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { Field, FieldError, inputClass } from "../../components/ui/field.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { fieldErrors, problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";
import { CodeEditor } from "./code-editor.tsx";
import { exampleCode } from "./example-code.ts";
import { OptionsCard } from "./options-card.tsx";
import { chunkCount, chunkInput, InputsError, parseArrayText, parseInputsFile, parseRange, type InputsSource, type RangeFields } from "./task-inputs.ts";
import { defaultOptions, parseOptions, type TaskOptionsForm } from "./task-options.ts";
import { TestRunResults } from "./test-run-results.tsx";
import { useTestRunner, type TestRunReport } from "./test-run.ts";

type InputMode = "array" | "file" | "range";
type Errors = Record<string, string>;

/** NDJSON inputs go up in parts this size, each at the offset the server expects (DESIGN §4). */
const ndjsonPartLines = 10_000;

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** `/tasks/new`: write the work code, give inputs and options, test-run, publish. */
export function NewTaskPage() {
  const { client, session } = useSession();
  const navigate = useNavigate();
  const testRunner = useTestRunner(client);
  const [progress, setProgress] = useState<Record<string, { fraction: number; message?: string | undefined }>>({});
  const ids = { description: useId(), code: useId(), inputs: useId(), wasm: useId(), file: useId() };

  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [code, setCode] = useState(exampleCode);
  const [mode, setMode] = useState<InputMode>("array");
  const [arrayText, setArrayText] = useState("[10000, 20000, 30000, 40000, 50000, 60000, 70000, 80000]");
  const [file, setFile] = useState<{ name: string; source: InputsSource } | null>(null);
  const [range, setRange] = useState<RangeFields>({ start: "0", end: "1000000", step: "1", size: "50000" });
  const [wasm, setWasm] = useState<{ name: string; bytes: Uint8Array } | null>(null);
  const [options, setOptions] = useState<TaskOptionsForm>(defaultOptions);
  const [errors, setErrors] = useState<Errors>({});
  const [problem, setProblem] = useState<Problem | null>(null);
  const [testCount, setTestCount] = useState("3");
  const [testing, setTesting] = useState(false);
  const [report, setReport] = useState<(TestRunReport & { ranWith: string }) | null>(null);
  const [testProblem, setTestProblem] = useState<Problem | null>(null);
  const [publishing, setPublishing] = useState<null | string>(null);

  /** What a test run depends on, to tell when its report no longer matches the form. */
  const runKey = JSON.stringify([code, mode, mode === "array" ? arrayText : mode === "file" ? file?.name : range, wasm?.name, options.webgpu, options.timeoutSec]);

  const setOption = <K extends keyof TaskOptionsForm>(key: K, value: TaskOptionsForm[K]) => setOptions((o) => ({ ...o, [key]: value }));

  /** The inputs as given, or the errors that stop them being used. */
  const readInputs = (out: Errors): InputsSource | null => {
    try {
      if (mode === "array") return parseArrayText(arrayText);
      if (mode === "file") {
        if (!file) throw new InputsError("Choose a .json or .ndjson file.");
        return file.source;
      }
      const parsed = parseRange(range);
      for (const [key, message] of Object.entries(parsed.errors)) out[`range.${key}`] = message;
      if (parsed.range) {
        const source: InputsSource = { kind: "range", range: parsed.range };
        if (chunkCount(source) > 2 ** 31 - 1) out["range.size"] = "Too many chunks: make each chunk larger.";
        else return source;
      }
      return null;
    } catch (error) {
      if (!(error instanceof InputsError)) throw error;
      out.inputs = error.message;
      return null;
    }
  };

  const readOptions = (out: Errors) => parseOptions(options, out);

  const checkCode = (out: Errors) => {
    if (!code.trim()) out.code = "Write the work function.";
    else if (!/export\s+default\b/.test(code)) out.code = "The code needs a default export: export default function work(input, ctx) { … }";
    else if (new TextEncoder().encode(code).length > 1024 * 1024) out.code = "The code must be at most 1 MiB.";
  };

  const testRun = async () => {
    const out: Errors = {};
    checkCode(out);
    const source = readInputs(out);
    const opts = readOptions(out);
    const n = Number(testCount);
    if (!Number.isInteger(n) || n < 1 || n > 100) out.testCount = "Between 1 and 100 chunks.";
    setErrors(out);
    setTestProblem(null);
    if (Object.keys(out).length > 0 || !source) return;
    setTesting(true);
    setReport(null);
    try {
      const count = Math.min(n, chunkCount(source));
      const inputs = Array.from({ length: count }, (_, index) => ({ index, input: chunkInput(source, index) }));
      const ranWith = runKey;
      setProgress({});
      const onProgress = ({ key, fraction, message }: { key: string; fraction: number; message?: string }) => setProgress((p) => ({ ...p, [key]: { fraction, message } }));
      setReport({ ...(await testRunner.run({ code, wasm: wasm?.bytes ?? null, webgpu: opts.requires.webgpu, timeoutMs: opts.timeoutMs, inputs, onProgress })), ranWith });
    } catch (error) {
      setTestProblem({ ...problemOf(error), title: "The test run could not start" });
    } finally {
      setTesting(false);
    }
  };

  const publish = async (start: boolean) => {
    const out: Errors = {};
    if (!name.trim()) out.name = "Give the task a name.";
    checkCode(out);
    const source = readInputs(out);
    const opts = readOptions(out);
    setErrors(out);
    setProblem(null);
    if (Object.keys(out).length > 0 || !source) {
      setProblem({ type: "about:blank", title: "Check the form", status: 0, detail: "Some fields need attention: see the messages next to them." });
      return;
    }
    setPublishing(start ? "Publishing…" : "Saving…");
    try {
      const body: NewTask = {
        name: name.trim(),
        description,
        code,
        ...opts,
        ...(wasm ? { wasm: toBase64(wasm.bytes) } : {}),
        ...(source.kind === "array" ? { inputs: source.values } : source.kind === "range" ? { range: source.range } : {}),
        start: start && source.kind !== "ndjson",
      };
      let task: Task = await client.createTask(body);
      if (source.kind === "ndjson") {
        for (let offset = 0; offset < source.lines.length; offset += ndjsonPartLines) {
          const part = source.lines.slice(offset, offset + ndjsonPartLines);
          setPublishing(`Uploading inputs… ${offset + part.length} of ${source.lines.length}`);
          try {
            await client.appendInputs(task.id, `${part.join("\n")}\n`, { offset, seal: offset + part.length >= source.lines.length });
          } catch (error) {
            // The draft exists: say so, rather than let a second try make another one.
            const p = problemOf(error);
            throw new ApiError({ ...p, detail: `${p.detail} — the task was saved as a draft with ${offset} of ${source.lines.length} inputs (see Tasks).` });
          }
        }
        if (start) task = await client.taskAction(task.id, "start");
      }
      void navigate(`/tasks/${task.id}`);
    } catch (error) {
      const p = problemOf(error);
      setProblem(p);
      setErrors(fieldErrors(p));
    } finally {
      setPublishing(null);
    }
  };

  const onInputsFile = async (chosen: File | undefined) => {
    setErrors(({ inputs: _, ...rest }) => rest);
    setFile(null);
    if (!chosen) return;
    try {
      setFile({ name: chosen.name, source: parseInputsFile(chosen.name, await chosen.text()) });
    } catch (error) {
      setErrors((e) => ({ ...e, inputs: error instanceof Error ? error.message : String(error) }));
    }
  };

  const onWasmFile = async (chosen: File | undefined) => {
    setErrors(({ wasm: _, ...rest }) => rest);
    setWasm(null);
    if (!chosen) return;
    const bytes = new Uint8Array(await chosen.arrayBuffer());
    if (bytes.length > 16 * 1024 * 1024) setErrors((e) => ({ ...e, wasm: "The module must be at most 16 MiB." }));
    else if (!WebAssembly.validate(bytes)) setErrors((e) => ({ ...e, wasm: `${chosen.name} is not a valid WebAssembly module.` }));
    else setWasm({ name: chosen.name, bytes });
  };

  const onCodeFile = async (chosen: File | undefined) => {
    if (chosen) setCode(await chosen.text());
  };

  const inputsSummary = (() => {
    try {
      if (mode === "array") return `${chunkCount(parseArrayText(arrayText))} chunks`;
      if (mode === "file") return file ? `${chunkCount(file.source)} chunks from ${file.name}` : null;
      const { range: r } = parseRange(range);
      return r ? `${chunkCount({ kind: "range", range: r })} chunks` : null;
    } catch {
      return null;
    }
  })();

  if (!session) return null;

  return (
    <form noValidate onSubmit={(e: FormEvent) => { e.preventDefault(); void publish(true); }} aria-label="New task">
      <PageHeader title="New task" description="Write the work function, give its inputs, try the first chunks here, then publish it to volunteers." />
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,1fr)_20rem]">
        <div className="flex min-w-0 flex-col gap-6">
          <Card aria-labelledby="about-heading">
            <CardTitle id="about-heading">About</CardTitle>
            <div className="grid gap-4">
              <Field label="Name" value={name} onChange={(e) => setName(e.target.value)} error={errors.name} maxLength={200} />
              <div>
                <label htmlFor={ids.description} className="mb-1 block text-sm font-medium text-slate-700">Description <span className="font-normal text-slate-500">(shown to volunteers)</span></label>
                <textarea id={ids.description} className={inputClass} rows={2} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={10_000} />
              </div>
            </div>
          </Card>

          <Card aria-labelledby="code-heading">
            <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
              <h2 id="code-heading" className="text-lg font-semibold">Work code</h2>
              <div className="flex flex-wrap gap-2">
                <label className="cursor-pointer rounded-lg border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100 focus-within:outline-3 focus-within:outline-brand-500/60">
                  Load a .js file
                  <input type="file" accept=".js,.mjs,text/javascript" className="sr-only" onChange={(e) => void onCodeFile(e.target.files?.[0])} />
                </label>
                <Button className="!px-3 !py-1.5" onClick={() => setCode(exampleCode)}>Use the example</Button>
              </div>
            </div>
            <p id={`${ids.code}-hint`} className="mb-2 text-sm text-slate-600">
              An ES module whose <code>default</code> export gets each chunk's input and returns its result (JSON). An optional <code>reduce(results)</code> export makes one aggregate.
            </p>
            <CodeEditor value={code} onChange={setCode} label="Work code" invalid={Boolean(errors.code)} describedBy={errors.code ? `${ids.code}-error` : `${ids.code}-hint`} />
            {errors.code ? <FieldError id={`${ids.code}-error`}>{errors.code}</FieldError> : null}
            <div className="mt-4">
              <label htmlFor={ids.wasm} className="mb-1 block text-sm font-medium text-slate-700">WebAssembly module <span className="font-normal text-slate-500">(optional, becomes ctx.wasm)</span></label>
              <input id={ids.wasm} type="file" accept=".wasm,application/wasm" className="block w-full text-sm file:mr-3 file:rounded-md file:border file:border-slate-300 file:bg-white file:px-3 file:py-1.5" aria-invalid={errors.wasm ? true : undefined} aria-describedby={errors.wasm ? `${ids.wasm}-error` : undefined} onChange={(e) => void onWasmFile(e.target.files?.[0])} />
              {errors.wasm ? <FieldError id={`${ids.wasm}-error`}>{errors.wasm}</FieldError> : wasm ? <p className="mt-1 text-xs text-slate-500">{wasm.name}, {wasm.bytes.length} bytes</p> : null}
            </div>
          </Card>

          <Card aria-labelledby="inputs-heading">
            <CardTitle id="inputs-heading">Inputs</CardTitle>
            <fieldset>
              <legend className="sr-only">How the inputs are given</legend>
              <div className="mb-4 flex flex-wrap gap-4 text-sm">
                {([["array", "JSON array"], ["file", "File (JSON or NDJSON)"], ["range", "Range of integers"]] as const).map(([value, text]) => (
                  <label key={value} className="flex items-center gap-2">
                    <input type="radio" name="inputs-mode" value={value} checked={mode === value} onChange={() => setMode(value)} />
                    {text}
                  </label>
                ))}
              </div>
            </fieldset>
            {mode === "array" ? (
              <div>
                <label htmlFor={ids.inputs} className="mb-1 block text-sm font-medium text-slate-700">Inputs (JSON array, one element per chunk)</label>
                <textarea id={ids.inputs} className={`${inputClass} font-mono`} rows={4} value={arrayText} onChange={(e) => setArrayText(e.target.value)} aria-invalid={errors.inputs ? true : undefined} aria-describedby={errors.inputs ? `${ids.inputs}-error` : undefined} spellCheck={false} />
                {errors.inputs ? <FieldError id={`${ids.inputs}-error`}>{errors.inputs}</FieldError> : null}
              </div>
            ) : mode === "file" ? (
              <div>
                <label htmlFor={ids.file} className="mb-1 block text-sm font-medium text-slate-700">Inputs file: a JSON array, or NDJSON (one JSON value per line)</label>
                <input id={ids.file} type="file" accept=".json,.ndjson,.jsonl,application/json,application/x-ndjson" className="block w-full text-sm file:mr-3 file:rounded-md file:border file:border-slate-300 file:bg-white file:px-3 file:py-1.5" aria-invalid={errors.inputs ? true : undefined} aria-describedby={errors.inputs ? `${ids.file}-error` : undefined} onChange={(e) => void onInputsFile(e.target.files?.[0])} />
                {errors.inputs ? <FieldError id={`${ids.file}-error`}>{errors.inputs}</FieldError> : null}
              </div>
            ) : (
              <div>
                <div className="grid grid-cols-2 gap-4 sm:grid-cols-4">
                  <Field label="Start" inputMode="numeric" value={range.start} onChange={(e) => setRange({ ...range, start: e.target.value })} error={errors["range.start"]} />
                  <Field label="End (exclusive)" inputMode="numeric" value={range.end} onChange={(e) => setRange({ ...range, end: e.target.value })} error={errors["range.end"]} />
                  <Field label="Step" inputMode="numeric" value={range.step} onChange={(e) => setRange({ ...range, step: e.target.value })} error={errors["range.step"]} />
                  <Field label="Numbers per chunk" inputMode="numeric" value={range.size} onChange={(e) => setRange({ ...range, size: e.target.value })} error={errors["range.size"]} />
                </div>
                <p className="mt-2 text-xs text-slate-500">Each chunk gets <code>{"{ start, end, step }"}</code>: a slice of the range.</p>
                {errors.range || errors.inputs ? <FieldError>{errors.range ?? errors.inputs}</FieldError> : null}
              </div>
            )}
            {inputsSummary ? <p className="mt-2 text-sm text-slate-600" data-testid="inputs-summary">{inputsSummary}</p> : null}
          </Card>

          <Card aria-labelledby="test-heading">
            <CardTitle id="test-heading">Test run</CardTitle>
            <p className="mb-3 text-sm text-slate-600">Runs the first chunks in this browser's own sandbox, exactly as a volunteer would, and sends nothing to the server.</p>
            <div className="flex flex-wrap items-end gap-3">
              <Field label="Chunks to test" className="w-36" inputMode="numeric" value={testCount} onChange={(e) => setTestCount(e.target.value)} error={errors.testCount} />
              <Button onClick={() => void testRun()} disabled={testing}>{testing ? "Running…" : "Test run"}</Button>
              {testing ? <Button variant="danger" onClick={() => void testRunner.stop()}>Stop</Button> : null}
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
            {report && report.ranWith !== runKey ? (
              <p role="status" className="mt-3 text-sm text-amber-800">The code, inputs or options changed since this run: run it again to check them.</p>
            ) : null}
            {report ? <TestRunResults report={report} /> : null}
          </Card>
        </div>

        <aside className="flex min-w-0 flex-col gap-6">
          <OptionsCard options={options} setOption={setOption} errors={errors} />
          <Card aria-labelledby="publish-heading" className="lg:sticky lg:top-20">
            <CardTitle id="publish-heading">Publish</CardTitle>
            <div className="flex flex-col gap-2">
              <Button type="submit" variant="primary" disabled={publishing !== null}>{publishing ?? "Publish and start"}</Button>
              <Button onClick={() => void publish(false)} disabled={publishing !== null}>Save as draft</Button>
            </div>
            <ProblemAlert problem={problem} className="mt-3" />
          </Card>
        </aside>
      </div>
    </form>
  );
}

