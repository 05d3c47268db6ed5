// What the task page's buttons do while one runs: which is busy, the problem it met, and what
// it reports done. Every action goes through `act`, so no two run at once and each refreshes
// the task list.
import type { Problem, Task } from "@crowdcompute/sdk";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { problemOf } from "../../lib/problem.ts";

export function useTaskActions(setTask: (task: Task) => void) {
  const queryClient = useQueryClient();
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  /** Runs one action labelled `label`; a task it returns is shown at once, `after` runs on success. */
  // biome-ignore lint/suspicious/noConfusingVoidType: actions that answer nothing (Promise<void>) pass as well as those that answer the task
  const act = async (label: string, run: () => Promise<Task | void>, after?: (task: Task | void) => void) => {
    setBusy(label);
    setProblem(null);
    setNotice(null);
    try {
      const result = await run();
      if (result) setTask(result);
      void queryClient.invalidateQueries({ queryKey: ["tasks"] });
      after?.(result);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(null);
    }
  };

  return { busy, problem, notice, setNotice, act };
}

export type TaskActions = ReturnType<typeof useTaskActions>;
