import type { Problem } from "@crowdcompute/sdk";
import { type FormEvent, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { usePolled } from "../../hooks/use-polled.ts";
import { api } from "../../lib/api.ts";
import { plural } from "../../lib/format.ts";
import { fieldErrors, problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";
import { AboutCard, CodeCard, InputsCard, PublishCard, TestRunCard } from "./new-task-cards.tsx";
import { OptionsCard } from "./options-card.tsx";
import { publishTask } from "./publish-task.ts";
import { type Errors, useTaskForm } from "./use-task-form.ts";

/**
 * `/tasks/new`: write the work code, give inputs and options, test-run, publish. The form's
 * state and checks are use-task-form.ts's, its cards new-task-cards.tsx's, publishing
 * publish-task.ts's.
 */
export function NewTaskPage() {
  const { client, session } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const cloneOf = params.get("from");
  const form = useTaskForm(client, cloneOf);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [publishing, setPublishing] = useState<null | string>(null);
  const site = usePolled(() => api.stats(), 10_000);

  const publish = async (start: boolean) => {
    const { mode, name } = form.values;
    const out: Errors = {};
    if (!name.trim()) out.name = "Give the task a name.";
    form.checkCode(out);
    const inputs = mode === "same" ? null : form.readInputs(out);
    const options = form.readOptions(out);
    form.setErrors(out);
    setProblem(null);
    if (Object.keys(out).length > 0 || (mode !== "same" && !inputs)) {
      setProblem({ type: "about:blank", title: "Check the form", status: 0, detail: "Some fields need attention: see the messages next to them." });
      return;
    }
    setPublishing(start ? "Publishing…" : "Saving…");
    try {
      const task = await publishTask(client, { values: form.values, options, cloneOf, inputs, inputChars: form.inputChars, start, onStatus: setPublishing });
      void navigate(`/tasks/${task.id}`);
    } catch (error) {
      const p = problemOf(error);
      setProblem(p);
      form.setErrors(fieldErrors(p));
    } finally {
      setPublishing(null);
    }
  };

  // Replicated chunks go to distinct volunteers (and accounts): fewer online means waiting.
  const replication = Number(form.values.options.replication);
  const online = site.data?.volunteersOnline ?? null;
  const volunteersWarning =
    online === null
      ? null
      : Number.isInteger(replication) && replication > 1 && online < replication
        ? `Replication ${replication} needs ${replication} different volunteers for each chunk (no volunteer or account computes two copies of one chunk); ${plural(online, "volunteer is", "volunteers are")} online now, so chunks will wait for more.`
        : online === 0
          ? "No volunteer is online now: the task will wait until one opens the volunteer page."
          : null;

  if (!session) return null;

  return (
    <form
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        void publish(true);
      }}
      aria-label="New task"
    >
      <PageHeader
        title={cloneOf ? "Copy of a task" : "New task"}
        description={
          cloneOf
            ? "A copy keeps the inputs of the task it copies (on the server); change anything else, test it, then publish it or save it as a draft. Nothing is saved until then."
            : "Write the work function, give its inputs, try the first chunks here, then publish it to volunteers."
        }
      />
      <ProblemAlert problem={form.sourceProblem} className="mb-4" />
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,1fr)_20rem]">
        <div className="flex min-w-0 flex-col gap-6">
          <AboutCard form={form} />
          <CodeCard form={form} />
          <InputsCard form={form} />
          <TestRunCard client={client} form={form} />
        </div>

        <aside className="flex min-w-0 flex-col gap-6">
          <OptionsCard options={form.values.options} setOption={form.setOption} errors={form.errors} />
          <PublishCard warning={volunteersWarning} publishing={publishing} problem={problem} onDraft={() => void publish(false)} />
        </aside>
      </div>
    </form>
  );
}
