import { useEffect, useRef, useState } from "react";
import { api } from "../../lib/api.ts";
import { VolunteerRunner, type RunnerStats } from "./volunteer-runner.ts";

const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency || 2 : 2;
const defaultThreads = Math.max(1, Math.floor(cores / 2));

const stateLabels: Record<RunnerStats["state"], string> = {
  stopped: "Not started",
  starting: "Starting…",
  running: "Computing",
  waiting: "Waiting for work",
  paused: "Paused",
  error: "Trouble",
};

function formatCpu(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `/`: one click to lend this browser's CPU to the tasks on this server. */
export function VolunteerPage() {
  const [threads, setThreads] = useState(defaultThreads);
  const [pauseWhenHidden, setPauseWhenHidden] = useState(false);
  const [stats, setStats] = useState<RunnerStats | null>(null);
  const runner = useRef<VolunteerRunner | null>(null);
  const active = stats !== null && stats.state !== "stopped" && stats.state !== "paused";

  useEffect(() => () => runner.current?.destroy(), []);

  useEffect(() => {
    if (!pauseWhenHidden) return;
    const onVisibility = () => {
      if (document.hidden) runner.current?.pause();
      else if (runner.current) runner.current.start();
    };
    document.addEventListener("visibilitychange", onVisibility);
    return () => document.removeEventListener("visibilitychange", onVisibility);
  }, [pauseWhenHidden]);

  const start = () => {
    runner.current ??= new VolunteerRunner({ client: api, storage: localStorage, threads, onChange: setStats });
    runner.current.start();
  };

  const changeThreads = (value: number) => {
    setThreads(value);
    void runner.current?.setThreads(value);
  };

  return (
    <main className="volunteer">
      <header>
        <h1>CrowdCompute</h1>
        <p>Lend your browser's spare CPU to science and other good work. Tasks run in a locked-down sandbox: they cannot see this page, your files or the network.</p>
      </header>

      <section className="controls" aria-label="Controls">
        {active ? (
          <button type="button" onClick={() => runner.current?.pause()}>
            Pause
          </button>
        ) : (
          <button type="button" className="primary" onClick={start}>
            {stats ? "Resume" : "Start"}
          </button>
        )}
        <label>
          Threads: <output>{threads}</output>
          <input
            type="range"
            aria-label="Threads"
            min={1}
            max={cores}
            value={threads}
            onChange={(event) => changeThreads(Number(event.target.value))}
          />
        </label>
        <label className="checkbox">
          <input type="checkbox" checked={pauseWhenHidden} onChange={(event) => setPauseWhenHidden(event.target.checked)} />
          Pause when this tab is hidden
        </label>
      </section>

      <section className="figures" aria-label="Your contribution">
        <div>
          <span className="label">Status</span>
          <strong data-testid="state">{stateLabels[stats?.state ?? "stopped"]}</strong>
        </div>
        <div>
          <span className="label">Chunks done</span>
          <strong data-testid="chunks-done">{stats?.chunksDone ?? 0}</strong>
        </div>
        <div>
          <span className="label">Chunks failed</span>
          <strong>{stats?.chunksFailed ?? 0}</strong>
        </div>
        <div>
          <span className="label">CPU time</span>
          <strong>{formatCpu(stats?.cpuMs ?? 0)}</strong>
        </div>
      </section>
      {stats?.message ? <p className="message" role="status">{stats.message}</p> : null}

      {stats && Object.keys(stats.tasks).length > 0 ? (
        <section aria-label="Tasks you are working for">
          <h2>Tasks you helped</h2>
          <ul className="tasks">
            {Object.entries(stats.tasks).map(([taskId, count]) => (
              <li key={taskId}>
                <code>{taskId.slice(0, 8)}</code> — {count} chunks
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </main>
  );
}
