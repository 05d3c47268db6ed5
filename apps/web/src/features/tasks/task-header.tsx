// The task page's header: its name and status, the lifecycle and upkeep buttons, and the
// confirmations that Cancel and Delete ask for first.
import type { Client, LifecycleAction, Task } from "@crowdcompute/sdk";
import { useState } from "react";
import { useNavigate } from "react-router";
import { Button } from "../../components/ui/button.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { StatusBadge, statusLabel } from "../../components/ui/status-badge.tsx";
import { plural } from "../../lib/format.ts";
import { deleteTask, retryFailed } from "./task-api.ts";
import type { TaskActions } from "./use-task-actions.ts";

export function TaskHeader({ client, token, task, actions, refresh }: { client: Client; token: string; task: Task; actions: TaskActions; refresh: () => void }) {
  const navigate = useNavigate();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const id = task.id;
  const lifecycle = (action: LifecycleAction, label: string) => (
    <Button
      key={action}
      variant={action === "cancel" ? "danger" : action === "start" ? "primary" : "secondary"}
      disabled={actions.busy !== null}
      // Cancelling cannot be undone: it asks first.
      onClick={() => (action === "cancel" ? setConfirmCancel(true) : void actions.act(label, () => client.taskAction(id, action), refresh))}
    >
      {label}
    </Button>
  );

  /** Retry failed, and say what it did: how many chunks run again, and whether the task does. */
  const retry = () =>
    actions.act(
      "Retry",
      async () => {
        const ended = task.status === "done" || task.status === "failed";
        const { task: after, reopened } = await retryFailed(token, id);
        actions.setNotice(
          reopened === 0
            ? "No failed chunks were left to retry."
            : `Retried ${plural(reopened, "failed chunk")}: ${reopened === 1 ? "it goes" : "they go"} to volunteers again, with a fresh set of attempts${ended && after.status === "running" ? "; the task is running again" : ""}.`,
        );
        return after;
      },
      refresh,
    );

  return (
    <>
      <PageHeader
        title={
          <span className="flex flex-wrap items-center gap-3">
            {task.name} <StatusBadge task={task} />
          </span>
        }
        docTitle={`${task.name} (${statusLabel(task)})`}
        description={task.description || undefined}
        actions={
          <>
            {task.status === "draft" ? lifecycle("start", "Start") : null}
            {task.status === "running" ? lifecycle("pause", "Pause") : null}
            {task.status === "paused" ? lifecycle("resume", "Resume") : null}
            {task.status === "running" || task.status === "paused" || task.status === "draft" ? lifecycle("cancel", "Cancel") : null}
            {task.counts.failed > 0 ? (
              <Button disabled={actions.busy !== null} onClick={() => void retry()}>
                Retry failed
              </Button>
            ) : null}
            {/* The copy opens in the task form, editable; it is saved from there. */}
            <Button disabled={actions.busy !== null} onClick={() => void navigate(`/tasks/new?from=${encodeURIComponent(id)}`)}>
              Clone
            </Button>
            <Button variant="danger" disabled={actions.busy !== null} onClick={() => setConfirmDelete(true)}>
              Delete
            </Button>
          </>
        }
      />
      {confirmDelete ? (
        <div role="alertdialog" aria-labelledby="delete-q" className="mb-4 flex flex-wrap items-center gap-3 rounded-lg border border-red-200 bg-red-50 p-4">
          <p id="delete-q" className="flex-1 text-red-900">
            Delete “{task.name}” with its inputs and results? This cannot be undone.
          </p>
          <Button
            variant="danger"
            onClick={() =>
              void actions.act(
                "Delete",
                () => deleteTask(token, id),
                () => void navigate("/tasks"),
              )
            }
          >
            Delete task
          </Button>
          <Button onClick={() => setConfirmDelete(false)} autoFocus>
            Keep it
          </Button>
        </div>
      ) : null}
      {confirmCancel ? (
        <div role="alertdialog" aria-labelledby="cancel-q" className="mb-4 flex flex-wrap items-center gap-3 rounded-lg border border-red-200 bg-red-50 p-4">
          <p id="cancel-q" className="flex-1 text-red-900">
            Cancel “{task.name}”? Volunteers get no more of its chunks and it cannot be started again; the results so far stay, and Clone makes a new task of the same inputs.
          </p>
          <Button
            variant="danger"
            onClick={() => {
              setConfirmCancel(false);
              void actions.act("Cancel", () => client.taskAction(id, "cancel"), refresh);
            }}
          >
            Cancel task
          </Button>
          <Button onClick={() => setConfirmCancel(false)} autoFocus>
            Keep it
          </Button>
        </div>
      ) : null}
    </>
  );
}
