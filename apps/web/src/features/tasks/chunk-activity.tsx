// What volunteers say of a task's chunks (docs/architecture.md, "Progress, console and
// checkpoints"): the chunks they are computing now with their latest `ctx.progress`, the
// newest console output as chunks are decided, and any one chunk looked up by index.
import type { Chunk, ChunkConsole, ChunkConsoleEvent, Client, RunningChunk, Task } from "@crowdcompute/sdk";
import { type FormEvent, useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { usePolled } from "../../hooks/use-polled.ts";
import { formatNumber } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { preview } from "./test-run-results.tsx";

const levelStyle: Record<string, string> = { error: "text-red-700", warn: "text-amber-700", debug: "text-slate-400", info: "text-sky-800", log: "text-slate-800" };

/** A chunk's console lines, as work code wrote them. */
export function ConsoleLines({ output, label }: { output: ChunkConsole; label: string }) {
  return (
    <pre className="max-h-64 overflow-auto rounded-lg bg-slate-50 p-2 font-mono text-xs whitespace-pre-wrap break-words" role="log" aria-label={label}>
      {output.lines.map((line, k) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: console lines are only ever appended
        <span key={k} className={`block ${levelStyle[line.level] ?? ""}`}>
          {line.level === "log" ? "" : `${line.level}: `}
          {line.text}
        </span>
      ))}
      {output.truncated ? <span className="block text-slate-500 italic">(it wrote more: a chunk keeps 100 lines and 16 KiB)</span> : null}
    </pre>
  );
}

/** How many leased chunks the card lists, lowest index first. */
const leasedShown = 20;

/**
 * The chunks at volunteers now: those that reported `ctx.progress`, with their fraction and
 * message (live, from the task's events), and the other leased chunks from the chunk listing,
 * polled every 2 s, so that chunks too short to report progress show too. Shown while the
 * task can run.
 */
export function RunningChunks({ client, task, running }: { client: Client; task: Task; running: RunningChunk[] }) {
  const live = task.status === "running" || task.status === "paused";
  const leased = usePolled(() => (live ? client.listChunks(task.id, { status: "leased", limit: leasedShown }) : Promise.resolve(null)), 2000, `${task.id}:${live}`);
  if (!live) return null;
  const byIndex = new Map<number, { index: number; fraction: number | null; message: string | null }>();
  for (const chunk of leased.data?.items ?? []) {
    byIndex.set(chunk.index, { index: chunk.index, fraction: chunk.progress?.fraction ?? null, message: chunk.progress?.message ?? null });
  }
  for (const chunk of running) byIndex.set(chunk.index, { index: chunk.index, fraction: chunk.fraction, message: chunk.message ?? null });
  const chunks = [...byIndex.values()].sort((a, b) => a.index - b.index).slice(0, leasedShown);
  return (
    <Card aria-labelledby="running-heading">
      <CardTitle id="running-heading">Chunks running now</CardTitle>
      {chunks.length === 0 ? (
        <p className="text-sm text-slate-500">
          No chunk is at a volunteer now. Work code reports how far a chunk is with <code>ctx.progress(fraction, message)</code>; volunteers send it within about a second.
        </p>
      ) : (
        <>
          <p className="mb-2 text-xs text-slate-500">
            {task.counts.leased > chunks.length ? `The first ${formatNumber(chunks.length)} of ${formatNumber(task.counts.leased)} chunks at volunteers. ` : ""}A volunteer computes its block a part at
            a time, so some wait their turn.
          </p>
          <ul className="flex flex-col gap-2" aria-label="Chunks running now">
            {chunks.map((chunk) => (
              <li key={chunk.index} className="text-sm" data-testid="running-chunk" data-index={chunk.index} data-progress={chunk.fraction ?? ""}>
                <div className="flex justify-between gap-2">
                  <span className="tabular-nums">Chunk {formatNumber(chunk.index)}</span>
                  <span className="truncate text-slate-600" title={chunk.message ?? undefined}>
                    {chunk.fraction === null ? "at a volunteer, no progress reported" : `${Math.round(chunk.fraction * 100)} %${chunk.message ? ` · ${chunk.message}` : ""}`}
                  </span>
                </div>
                {chunk.fraction === null ? null : <progress className="h-2 w-full" max={1} value={chunk.fraction} aria-label={`Chunk ${chunk.index}`} />}
              </li>
            ))}
          </ul>
        </>
      )}
    </Card>
  );
}

/** The newest console output of decided chunks, and a look-up of any chunk's. */
export function ConsoleOutput({ client, task, tail }: { client: Client; task: Task; tail: ChunkConsoleEvent[] }) {
  const [wanted, setWanted] = useState("");
  const [found, setFound] = useState<Chunk | "none" | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const lookUp = async (event: FormEvent) => {
    event.preventDefault();
    const index = Number(wanted);
    if (!Number.isInteger(index) || index < 0) return;
    setProblem(null);
    try {
      const page = await client.listChunks(task.id, { ...(index > 0 ? { cursor: String(index - 1) } : {}), limit: 1 });
      const chunk = page.items[0];
      setFound(chunk && chunk.index === index ? chunk : "none");
    } catch (error) {
      setProblem(problemOf(error).detail);
    }
  };
  return (
    <Card aria-labelledby="console-heading">
      <CardTitle id="console-heading">Console output</CardTitle>
      <form className="mb-3 flex flex-wrap items-center gap-2 text-sm" onSubmit={(event) => void lookUp(event)}>
        <label htmlFor="console-chunk">Chunk</label>
        <input id="console-chunk" className="w-28 rounded border border-slate-300 px-2 py-1" inputMode="numeric" value={wanted} onChange={(event) => setWanted(event.target.value.trim())} />
        <Button type="submit" disabled={!/^\d+$/.test(wanted)}>
          Show
        </Button>
      </form>
      {problem ? <p className="mb-2 text-sm text-red-800">{problem}</p> : null}
      {found === "none" ? <p className="mb-3 text-sm text-slate-500">The task has no such chunk.</p> : null}
      {found && found !== "none" ? (
        <div className="mb-4 text-sm" data-testid="looked-up-chunk">
          <p className="mb-1">
            Chunk {formatNumber(found.index)}: <strong>{found.status}</strong>
            {found.progress ? ` · ${Math.round(found.progress.fraction * 100)} %${found.progress.message ? ` (${found.progress.message})` : ""}` : ""}
            {found.checkpointAt ? " · checkpointed" : ""} · input <code className="font-mono text-xs">{preview(found.input, 60)}</code>
          </p>
          {found.console ? <ConsoleLines output={found.console} label={`Console of chunk ${found.index}`} /> : <p className="text-slate-500">It wrote nothing to its console.</p>}
        </div>
      ) : null}
      {tail.length === 0 ? (
        <p className="text-sm text-slate-500">
          Lines chunks write with <code>console.log</code> appear here as they are decided (since this page opened).
        </p>
      ) : (
        <ul className="flex flex-col gap-2" aria-label="Newest console output">
          {tail.map((output) => (
            <li key={output.index} data-testid="console-output">
              <p className="mb-1 text-xs text-slate-500">
                Chunk {formatNumber(output.index)} {output.outcome === "done" ? "" : "(a failed attempt)"}
              </p>
              <ConsoleLines output={output} label={`Console of chunk ${output.index}`} />
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
