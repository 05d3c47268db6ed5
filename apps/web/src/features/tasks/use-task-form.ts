// The new-task form's state and checks: what the creator typed (one state object, not a hook
// per field), a clone's starting values, the inputs and options as the API takes them, and the
// messages by field. The page and its cards (new-task-page.tsx, new-task-cards.tsx) only show it.
import { MAX_CODE_BYTES, MAX_TASK_CHUNKS, MAX_TASK_NAME_CHARS, MAX_WASM_BYTES } from "@crowdcompute/contract/limits";
import type { Client, Problem, Task } from "@crowdcompute/sdk";
import { useEffect, useState } from "react";
import { plural } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { exampleCode } from "./example-code.ts";
import { chunkCount, InputsError, type InputsSource, parseArrayText, parseInputsFile, parseRange, type RangeFields } from "./task-inputs.ts";
import { defaultOptions, parseOptions, type TaskOptionsForm } from "./task-options.ts";

/** `same`: a clone's inputs, copied on the server from the task it was cloned from. */
type InputMode = "array" | "file" | "range" | "same";
/** Messages by field (`range.end`, `code`, …). */
export type Errors = Record<string, string>;

/** Inputs larger than this (as JSON text) go up in NDJSON parts after the task is made, as a file of lines does, not in one request. */
export const inlineInputChars = 8 * 1024 * 1024;

export interface TaskFormValues {
  name: string;
  description: string;
  code: string;
  mode: InputMode;
  arrayText: string;
  file: { name: string; source: InputsSource; chars: number } | null;
  range: RangeFields;
  wasm: { name: string; bytes: Uint8Array } | null;
  options: TaskOptionsForm;
}

const initialValues: TaskFormValues = {
  name: "",
  description: "",
  code: exampleCode,
  mode: "array",
  arrayText: "[10000, 20000, 30000, 40000, 50000, 60000, 70000, 80000]",
  file: null,
  range: { start: "0", end: "1000000", step: "1", size: "50000" },
  wasm: null,
  options: defaultOptions,
};

/** The form of `/tasks/new`, or of `/tasks/new?from=ID` (a copy of that task, its inputs kept on the server). */
export function useTaskForm(client: Client, cloneOf: string | null) {
  const [values, setValues] = useState<TaskFormValues>(initialValues);
  const [errors, setErrors] = useState<Errors>({});
  const [cloneSource, setCloneSource] = useState<Task | null>(null);
  const [sourceProblem, setSourceProblem] = useState<Problem | null>(null);
  const set = <K extends keyof TaskFormValues>(key: K, value: TaskFormValues[K]) => setValues((v) => ({ ...v, [key]: value }));
  const setOption = <K extends keyof TaskOptionsForm>(key: K, value: TaskOptionsForm[K]) => setValues((v) => ({ ...v, options: { ...v.options, [key]: value } }));
  const { code, mode, arrayText, file, range, wasm, options } = values;

  // A clone: the form starts as a copy of the task, named "Copy of …", with the same inputs.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the clone is read once per task cloned; the client does not change
  useEffect(() => {
    if (!cloneOf) return;
    let stopped = false;
    void (async () => {
      try {
        const [task, taskCode] = await Promise.all([client.getTask(cloneOf), client.taskCode(cloneOf)]);
        if (stopped) return;
        setCloneSource(task);
        setValues((v) => ({
          ...v,
          name: `Copy of ${task.name}`.slice(0, MAX_TASK_NAME_CHARS),
          description: task.description,
          code: taskCode,
          mode: "same",
          options: {
            ...v.options,
            replication: String(task.replication),
            quorum: String(task.quorum),
            timeoutSec: String(task.timeoutMs / 1000),
            memoryMb: String(task.memoryMb),
            maxAttempts: String(task.maxAttempts),
            priority: String(task.priority),
            webgpu: Boolean(task.requires.webgpu),
            allowUsers: task.allowUsers?.join(", ") ?? "",
            toleranceAbs: task.tolerance?.abs !== undefined ? String(task.tolerance.abs) : "",
            toleranceRel: task.tolerance?.rel !== undefined ? String(task.tolerance.rel) : "",
            spotCheck: String(task.spotCheck),
          },
        }));
      } catch (error) {
        if (!stopped) setSourceProblem({ ...problemOf(error), title: "The task to copy could not be read" });
      }
    })();
    return () => {
      stopped = true;
    };
  }, [cloneOf]);

  /** The inputs as given, or the errors that stop them being used. */
  const readInputs = (out: Errors): InputsSource | null => {
    try {
      if (mode === "same") return null;
      if (mode === "array") return parseArrayText(arrayText);
      if (mode === "file") {
        if (!file) throw new InputsError("Choose a .json or .ndjson file.");
        return file.source;
      }
      const parsed = parseRange(range);
      for (const [key, message] of Object.entries(parsed.errors)) out[`range.${key}`] = message;
      if (parsed.range) {
        const source: InputsSource = { kind: "range", range: parsed.range };
        if (chunkCount(source) > MAX_TASK_CHUNKS) out["range.size"] = "Too many chunks: make each chunk larger.";
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
    else if (new TextEncoder().encode(code).length > MAX_CODE_BYTES) out.code = "The code must be at most 1 MiB.";
  };

  // Inputs are checked while they are typed (a moment after the last key), not only on submit.
  // biome-ignore lint/correctness/useExhaustiveDependencies: a re-check a moment after the inputs' text changes; readInputs reads the latest values
  useEffect(() => {
    if (mode !== "array" && mode !== "range") return;
    const timer = setTimeout(() => {
      const out: Errors = {};
      readInputs(out);
      setErrors((old) => {
        const kept = Object.fromEntries(Object.entries(old).filter(([key]) => key !== "inputs" && !key.startsWith("range")));
        return { ...kept, ...out };
      });
    }, 300);
    return () => clearTimeout(timer);
  }, [mode, arrayText, range]);

  const onInputsFile = async (chosen: File | undefined) => {
    setErrors(({ inputs: _, ...rest }) => rest);
    set("file", null);
    if (!chosen) return;
    try {
      const text = await chosen.text();
      set("file", { name: chosen.name, source: parseInputsFile(chosen.name, text), chars: text.length });
    } catch (error) {
      setErrors((e) => ({ ...e, inputs: error instanceof Error ? error.message : String(error) }));
    }
  };

  const onWasmFile = async (chosen: File | undefined) => {
    setErrors(({ wasm: _, ...rest }) => rest);
    set("wasm", null);
    if (!chosen) return;
    let bytes: Uint8Array = new Uint8Array(await chosen.arrayBuffer());
    if (/\.wat$/i.test(chosen.name)) {
      // WebAssembly text, compiled here by the CLI's compiler (wabt, loaded now).
      try {
        const { compileWat } = await import("@crowdcompute/sdk/wat");
        bytes = await compileWat(chosen.name.slice(-64), await chosen.text());
      } catch (error) {
        setErrors((e) => ({ ...e, wasm: `${chosen.name} does not compile: ${error instanceof Error ? error.message : String(error)}` }));
        return;
      }
    }
    if (bytes.length > MAX_WASM_BYTES) setErrors((e) => ({ ...e, wasm: "The module must be at most 16 MiB." }));
    else if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) setErrors((e) => ({ ...e, wasm: `${chosen.name} is not a valid WebAssembly module.` }));
    else set("wasm", { name: chosen.name, bytes });
  };

  const onCodeFile = async (chosen: File | undefined) => {
    if (chosen) set("code", await chosen.text());
  };

  /** What a test run depends on, to tell when its report no longer matches the form. */
  const runKey = JSON.stringify([code, mode, mode === "array" ? arrayText : mode === "file" ? file?.name : range, wasm?.name, options.webgpu, options.timeoutSec]);

  /** The inputs' size as JSON text, to tell whether they fit in one request. */
  const inputChars = mode === "file" ? (file?.chars ?? 0) : mode === "array" ? arrayText.length : 0;

  const inputsSummary = (() => {
    try {
      if (mode === "same") return cloneSource ? `${plural(cloneSource.counts.total, "chunk")}, the inputs of “${cloneSource.name}”` : null;
      if (mode === "array") return plural(chunkCount(parseArrayText(arrayText)), "chunk");
      if (mode === "file") return file ? `${plural(chunkCount(file.source), "chunk")} from ${file.name}${inputChars > inlineInputChars ? ", uploaded in parts" : ""}` : null;
      const { range: r } = parseRange(range);
      return r ? plural(chunkCount({ kind: "range", range: r }), "chunk") : null;
    } catch {
      return null;
    }
  })();

  return {
    values,
    set,
    setOption,
    errors,
    setErrors,
    cloneOf,
    cloneSource,
    sourceProblem,
    readInputs,
    readOptions,
    checkCode,
    onInputsFile,
    onWasmFile,
    onCodeFile,
    runKey,
    inputChars,
    inputsSummary,
  };
}

export type TaskForm = ReturnType<typeof useTaskForm>;
