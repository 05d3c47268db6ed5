// The task page's cards (task-page.tsx lays them out): progress, results, errors, details. The
// live parts (chunks running now, console output) are chunk-activity.tsx's.
import type { Chunk, Client, Task } from "@crowdcompute/sdk";
import { useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle, Stat } from "../../components/ui/card.tsx";
import { TaskProgress } from "../../components/ui/progress-bar.tsx";
import { Row, Table } from "../../components/ui/table.tsx";
import { formatDate, formatDuration, formatNumber, formatRate, plural } from "../../lib/format.ts";
import { ConsoleLines } from "./chunk-activity.tsx";
import { downloadResults } from "./results-download.ts";
import { preview } from "./test-run-results.tsx";
import type { TaskActions } from "./use-task-actions.ts";

const maxFailedShown = 100;

/** Counts, the bar and the rate; `connected`: the live stream is open. */
export function ProgressCard({ task, connected }: { task: Task; connected: boolean }) {
  const { counts } = task;
  const final = counts.done + counts.failed;
  const ended = task.status === "done" || task.status === "failed" || task.status === "cancelled";
  return (
    <Card className="mb-6" aria-labelledby="progress-heading">
      <div className="mb-3 flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="progress-heading" className="text-lg font-semibold">
          Progress
        </h2>
        <span className="text-sm text-slate-500" data-testid="progress-text">
          {formatNumber(final)} of {plural(counts.total, "chunk")}
          {task.sealed ? "" : " (inputs still open)"}
          {connected && !ended ? " · live" : ""}
        </span>
      </div>
      <TaskProgress task={task} label="Task progress" />
      <div className="mt-4 grid grid-cols-2 gap-3 sm:grid-cols-4 xl:grid-cols-7">
        <Stat label="Done" value={formatNumber(counts.done)} testId="count-done" />
        <Stat label="Failed" value={formatNumber(counts.failed)} testId="count-failed" />
        <Stat label="At volunteers" value={formatNumber(counts.leased)} testId="count-leased" hint="Leased to volunteers, who compute them a part at a time: not all of them this instant" />
        <Stat label="Waiting" value={formatNumber(counts.pending)} testId="count-pending" hint="Not leased to anyone yet" />
        {task.computedBy === null ? (
          <Stat label="Volunteers" value={formatNumber(task.volunteers)} testId="count-volunteers" hint="Volunteers holding chunks of this task now" />
        ) : (
          <Stat
            label="Computed by"
            value={
              <>
                {formatNumber(task.computedBy)} <span className="text-sm font-normal text-slate-500">{task.computedBy === 1 ? "volunteer" : "volunteers"}</span>
              </>
            }
            raw={task.computedBy}
            testId="computed-by"
            hint="Volunteers that sent back a result or an error for this task's chunks"
          />
        )}
        <Stat label="Rate (60 s)" value={formatRate(task.chunksPerSec)} />
        <Stat label="CPU time" value={formatDuration(task.cpuMs)} />
      </div>
      {task.replication > 1 ? <VerificationStats task={task} /> : null}
    </Card>
  );
}

/** What verifying a replicated task costs, live (docs/architecture.md, "Replication, trust and reduce"). */
function VerificationStats({ task }: { task: Task }) {
  const { copiesReceived, chunksReplicated, disagreements, volunteersBanned } = task.verification;
  const perChunk = task.counts.done === 0 ? "–" : `${(copiesReceived / task.counts.done).toFixed(2)}×`;
  return (
    <section aria-labelledby="verification-heading" className="mt-4 border-t border-slate-100 pt-3">
      <h3 id="verification-heading" className="mb-2 text-sm font-semibold text-slate-700">
        Verification
      </h3>
      <div className="grid grid-cols-2 gap-3 sm:grid-cols-4 xl:grid-cols-5">
        <Stat label="Copies received" value={formatNumber(copiesReceived)} testId="verification-copies" hint="Every copy of every chunk that came back, the first included" />
        <Stat label="Copies a chunk done" value={perChunk} testId="verification-overhead" hint="Copies received divided by chunks done: what verification costs" />
        <Stat label="Chunks replicated" value={formatNumber(chunksReplicated)} testId="verification-replicated" hint="Chunks that went to a vote for more than one copy" />
        <Stat label="Disagreements" value={formatNumber(disagreements)} testId="verification-disagreements" hint="Chunks whose copies did not all agree" />
        <Stat label="Volunteers banned" value={formatNumber(volunteersBanned)} testId="verification-banned" hint="For results that lost on this task" />
      </div>
    </section>
  );
}

/** The downloads and the aggregate. */
export function ResultsCard({ client, task, actions: { act, busy } }: { client: Client; task: Task; actions: TaskActions }) {
  return (
    <Card aria-labelledby="results-heading">
      <CardTitle id="results-heading">Results</CardTitle>
      <p className="mb-3 text-sm text-slate-600">One line per finished chunk, in index order{task.status === "running" ? " (so far)" : ""}.</p>
      <div className="flex flex-wrap gap-2">
        <Button onClick={() => void act("Download", () => downloadResults(client, task, "ndjson"))} disabled={busy !== null}>
          Download NDJSON
        </Button>
        <Button onClick={() => void act("Download", () => downloadResults(client, task, "csv"))} disabled={busy !== null}>
          Download CSV
        </Button>
      </div>
      <h3 className="mt-5 mb-1 text-sm font-semibold text-slate-700">Aggregate</h3>
      <p className="text-sm" data-testid="aggregate">
        <span className="text-slate-500">{task.aggregate.state}</span>
        {task.aggregate.value !== undefined ? <code className="ml-2 font-mono text-xs break-all">{preview(task.aggregate.value, 400)}</code> : null}
      </p>
    </Card>
  );
}

/** Up to 100 failed chunks, following the cursor: a filtered page may come back short before the end. */
async function failedChunks(client: Client, id: string): Promise<Chunk[]> {
  const found: Chunk[] = [];
  for (let cursor: string | null = null; found.length < maxFailedShown; ) {
    const page = await client.listChunks(id, { status: "failed", limit: maxFailedShown - found.length, ...(cursor ? { cursor } : {}) });
    found.push(...page.items);
    cursor = page.nextCursor;
    if (cursor === null) break;
  }
  return found;
}

/** The last error, and on demand the failed chunks with their errors and console. */
export function ErrorsCard({ client, task, actions: { act, busy } }: { client: Client; task: Task; actions: TaskActions }) {
  const [failed, setFailed] = useState<Chunk[] | null>(null);
  return (
    <Card aria-labelledby="errors-heading">
      <CardTitle id="errors-heading">Errors</CardTitle>
      {task.lastError ? (
        <div className="mb-3 rounded-lg bg-red-50 p-3 text-sm text-red-900" data-testid="last-error">
          <p className="font-medium">
            Last error, chunk {formatNumber(task.lastError.index)} ({task.lastError.kind})
          </p>
          <pre className="mt-1 font-mono text-xs whitespace-pre-wrap break-words">{task.lastError.message}</pre>
        </div>
      ) : (
        <p className="mb-3 text-sm text-slate-500">No errors so far.</p>
      )}
      {task.counts.failed > 0 ? (
        <Button onClick={() => void act("Loading failed chunks", async () => setFailed(await failedChunks(client, task.id)))} disabled={busy !== null}>
          {failed ? "Reload failed chunks" : "Show failed chunks"}
        </Button>
      ) : null}
      {failed ? (
        failed.length === 0 ? (
          <p className="mt-3 text-sm text-slate-500">No failed chunks.</p>
        ) : (
          <>
            <Table label="Failed chunks" columns={["Chunk", "Input", "Attempts", "Error"]} dense className="mt-3">
              {failed.map((chunk) => (
                <Row key={chunk.index}>
                  <td className="py-1 pr-3 tabular-nums">{formatNumber(chunk.index)}</td>
                  <td className="py-1 pr-3">
                    <code className="font-mono text-xs break-all">{preview(chunk.input, 60)}</code>
                  </td>
                  <td className="py-1 pr-3 tabular-nums">{chunk.attempts ?? ""}</td>
                  <td className="py-1 text-red-800">
                    {chunk.lastError ? (
                      <>
                        <strong>{chunk.lastError.kind}</strong>: {chunk.lastError.message}
                      </>
                    ) : null}
                    {chunk.console ? <ConsoleLines output={chunk.console} label={`Console of chunk ${chunk.index}`} /> : null}
                  </td>
                </Row>
              ))}
            </Table>
            {failed.length >= maxFailedShown ? <p className="mt-1 text-xs text-slate-500">The first {maxFailedShown}; download the results for all.</p> : null}
          </>
        )
      ) : null}
    </Card>
  );
}

/** The task's options and hashes. */
export function DetailsCard({ task }: { task: Task }) {
  return (
    <Card aria-labelledby="details-heading">
      <CardTitle id="details-heading">Details</CardTitle>
      <dl className="grid grid-cols-[auto_minmax(0,1fr)] gap-x-4 gap-y-1 text-sm">
        <dt className="text-slate-500">Id</dt>
        <dd className="font-mono text-xs break-all">{task.id}</dd>
        <dt className="text-slate-500">Created</dt>
        <dd>{formatDate(task.createdAt)}</dd>
        {task.finishedAt ? (
          <>
            <dt className="text-slate-500">Finished</dt>
            <dd>{formatDate(task.finishedAt)}</dd>
          </>
        ) : null}
        <dt className="text-slate-500">Replication</dt>
        <dd>
          {task.replication} (quorum {task.quorum})
        </dd>
        {task.replication > 1 && task.spotCheck < 1 ? (
          <>
            <dt className="text-slate-500">Spot check</dt>
            <dd data-testid="task-spot-check">{Math.round(task.spotCheck * 1000) / 10} % of trusted volunteers' blocks copied</dd>
          </>
        ) : null}
        {task.tolerance ? (
          <>
            <dt className="text-slate-500">Tolerance</dt>
            <dd data-testid="task-tolerance">
              {[task.tolerance.abs !== undefined ? `±${task.tolerance.abs}` : null, task.tolerance.rel !== undefined ? `±${task.tolerance.rel} relative` : null].filter(Boolean).join(" or ")}
            </dd>
          </>
        ) : null}
        <dt className="text-slate-500">Timeout</dt>
        <dd>
          {formatDuration(task.timeoutMs)} per chunk, {task.maxAttempts} {task.maxAttempts === 1 ? "attempt" : "attempts"}
        </dd>
        <dt className="text-slate-500">Memory</dt>
        <dd>{task.memoryMb} MiB per worker</dd>
        <dt className="text-slate-500">Priority</dt>
        <dd>{task.priority}</dd>
        <dt className="text-slate-500">WebGPU</dt>
        <dd>{task.requires.webgpu ? "required" : "no"}</dd>
        <dt className="text-slate-500">Code</dt>
        <dd className="font-mono text-xs break-all">sha256 {task.codeSha256}</dd>
        {task.wasmSha256 ? (
          <>
            <dt className="text-slate-500">Wasm</dt>
            <dd className="font-mono text-xs break-all">sha256 {task.wasmSha256}</dd>
          </>
        ) : null}
        {task.allowUsers ? (
          <>
            <dt className="text-slate-500">Allowed users</dt>
            <dd className="font-mono text-xs break-all">{task.allowUsers.join(", ")}</dd>
          </>
        ) : null}
      </dl>
    </Card>
  );
}
