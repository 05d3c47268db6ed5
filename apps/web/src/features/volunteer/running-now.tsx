import { Card, CardTitle } from "../../components/ui/card.tsx";
import { useNow } from "../../hooks/use-polled.ts";
import { formatDuration, formatNumber, plural } from "../../lib/format.ts";
import type { RunningPart, TaskInfo } from "./volunteer-runner.ts";

/**
 * What this machine computes now: each part of a block in the sandbox, the task and its
 * creator, its chunks, their `ctx.progress` and the time so far. Not a live region: a clock
 * read out every second would drown everything else.
 */
export function RunningNow({
  running,
  taskInfo,
  threads,
  state,
  wanted,
  resumable,
  heldBy,
}: {
  running: RunningPart[];
  taskInfo: Record<string, TaskInfo>;
  threads: number;
  state: string;
  /** The volunteer pressed Start and not Pause since. */
  wanted: boolean;
  /** The page ran before (its button says Resume). */
  resumable: boolean;
  heldBy: string | null;
}) {
  const now = useNow(1000);
  return (
    <Card aria-labelledby="running-heading">
      <CardTitle id="running-heading">Running on this machine</CardTitle>
      {running.length === 0 ? (
        <p className="text-sm text-slate-500" data-testid="running-empty">
          {idleText(state, wanted, resumable, heldBy)}
        </p>
      ) : (
        <>
          <p className="mb-3 text-sm text-slate-600">
            {plural(
              running.reduce((sum, part) => sum + part.chunks, 0),
              "chunk",
            )}{" "}
            in the sandbox, computed on {plural(threads, "thread")}.
          </p>
          <ul className="flex flex-col gap-3">
            {running.map((part) => (
              <RunningPartItem key={`${part.taskId}:${part.firstIndex}:${part.since}`} part={part} info={taskInfo[part.taskId]} now={now} />
            ))}
          </ul>
        </>
      )}
    </Card>
  );
}

/** Why nothing runs, as the volunteer left it: started and held or waiting, or not started. */
function idleText(state: string, wanted: boolean, resumable: boolean, heldBy: string | null): string {
  if (heldBy) return `Nothing runs now: held, ${heldBy}.`;
  if (!wanted) return `Nothing runs now: press ${resumable ? "Resume" : "Start"} to lend this browser.`;
  if (state === "waiting") return "Nothing runs now: no work for this browser right now; it asks again by itself.";
  if (state === "error") return "Nothing runs now: the page is in trouble (said above) and tries again by itself.";
  return "Between chunks…";
}

function RunningPartItem({ part, info, now }: { part: RunningPart; info: TaskInfo | undefined; now: number }) {
  const reported = part.progress;
  const mean = reported.length > 0 ? reported.reduce((sum, p) => sum + p.fraction, 0) / reported.length : null;
  const latest = reported.at(-1);
  const chunks = part.firstIndex === part.lastIndex ? `chunk ${formatNumber(part.firstIndex)}` : `chunks ${formatNumber(part.firstIndex)}–${formatNumber(part.lastIndex)}`;
  return (
    <li className="rounded-lg border border-slate-200 p-3" data-testid="running-part" data-task-id={part.taskId} data-chunks={part.chunks}>
      <div className="flex flex-wrap items-baseline justify-between gap-x-3 gap-y-1">
        <span className="min-w-0 truncate font-medium">{info?.name ?? <code className="font-mono text-xs">task {part.taskId.slice(0, 8)}</code>}</span>
        <span className="shrink-0 text-xs text-slate-500 tabular-nums" data-testid="running-since">
          {formatDuration(Math.max(0, now - part.since))} so far
        </span>
      </div>
      <p className="text-xs text-slate-500">
        {info ? <>for {info.creator ?? "an unnamed creator"} · </> : null}
        {chunks} ({plural(part.chunks, "chunk")})
      </p>
      {mean !== null ? (
        <div className="mt-2 flex items-center gap-3 text-xs">
          <progress className="h-2 w-32 shrink-0" max={1} value={mean} aria-label={`Progress of ${chunks}`} />
          <span className="min-w-0 truncate text-slate-600" data-testid="running-progress">
            {Math.round(mean * 100)} %{latest?.message ? ` · chunk ${formatNumber(latest.index)}: ${latest.message}` : ""}
          </span>
        </div>
      ) : (
        <p className="mt-1 text-xs text-slate-500">No progress reported yet (the work function may not call ctx.progress).</p>
      )}
    </li>
  );
}
