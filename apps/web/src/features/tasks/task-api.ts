// Task calls and hooks for the creator pages, through the SDK (problems arrive as ApiError).
import { ApiError, type ChunkConsoleEvent, type Client, createClient, type RunningChunk, type Task } from "@crowdcompute/sdk";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { useSession } from "../../lib/session.tsx";

const as = (token: string) => createClient({ baseUrl: "", token });

export const retryFailed = (token: string, id: string): Promise<{ task: Task; reopened: number }> => as(token).retryFailed(id);
export const deleteTask = (token: string, id: string): Promise<void> => as(token).deleteTask(id);

/** The caller's tasks (every creator's for an admin), newest first, page by page, refreshed every 2 s. */
export function useTaskList(pageSize = 50) {
  const { client, session } = useSession();
  const query = useInfiniteQuery({
    queryKey: ["tasks", session?.user.id, pageSize],
    queryFn: ({ pageParam }) => client.listTasks({ limit: pageSize, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: "",
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    refetchInterval: 2000,
    enabled: Boolean(session),
  });
  const items = useMemo(() => query.data?.pages.flatMap((page) => page.items) ?? [], [query.data]);
  return { ...query, items };
}

export interface LiveSample {
  /** Seconds since the epoch. */
  t: number;
  final: number;
  chunksPerSec: number;
}

/** Console outputs the page keeps of those the stream sends (the newest). */
const consoleKept = 50;

/**
 * One task, live: the first view from GET, then each SSE `progress` event; reconnects after
 * a dropped stream while the task can still change. Keeps a sample per update for charts,
 * the chunks volunteers are computing now (`chunks` events) and the newest console output
 * (`console` events, from the page's first connection on, resumed after its cursor).
 */
export function useLiveTask(client: Client, id: string) {
  const [task, setTask] = useState<Task | null>(null);
  const [running, setRunning] = useState<RunningChunk[]>([]);
  const [consoleTail, setConsoleTail] = useState<ChunkConsoleEvent[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [samples, setSamples] = useState<LiveSample[]>([]);
  const [connected, setConnected] = useState(false);
  const [reload, setReload] = useState(0);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `reload` is a counter whose change asks for a fresh connection
  useEffect(() => {
    const stop = new AbortController();
    let last: Task | null = null;
    let consoleAfter: string | undefined;
    const addSample = (view: Task) => {
      const sample = { t: Date.now() / 1000, final: view.counts.done + view.counts.failed, chunksPerSec: view.chunksPerSec };
      // Samples under half a second apart replace each other (the GET and the stream's first event).
      setSamples((old) => (old.length > 0 && sample.t - old.at(-1)!.t < 0.5 ? [...old.slice(0, -1), sample] : [...old.slice(-599), sample]));
    };
    const seen = (view: Task) => {
      last = view;
      setTask(view);
      setError(null);
      addSample(view);
    };
    // Between events (sent only on change) a sample every 2 s keeps the chart's clock moving.
    const ticker = setInterval(() => {
      if (last && (last.status === "running" || last.status === "paused")) {
        const view = last;
        addSample(view);
      }
    }, 2000);
    void (async () => {
      for (let attempt = 0; !stop.signal.aborted; attempt++) {
        try {
          seen(await client.getTask(id));
          setConnected(true);
          for await (const event of client.taskEventStream(id, { signal: stop.signal, ...(consoleAfter !== undefined ? { consoleAfter } : {}) })) {
            if (event.type === "progress") seen(event.task);
            else if (event.type === "chunks") setRunning(event.items);
            else {
              consoleAfter = event.console.cursor;
              const output = event.console;
              setConsoleTail((old) => [output, ...old.filter((other) => other.index !== output.index)].slice(0, consoleKept));
            }
          }
          setRunning([]);
          setConnected(false);
          // The stream ends after the task's last event; a restarted task is picked up on reload.
          return;
        } catch (e) {
          if (stop.signal.aborted) return;
          setConnected(false);
          setError(e);
          if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 429) return;
          await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 1000 * 2 ** attempt)));
        }
      }
    })();
    return () => {
      stop.abort();
      clearInterval(ticker);
    };
  }, [client, id, reload]);

  return { task, error, samples, connected, running, consoleTail, setTask, refresh: () => setReload((n) => n + 1) };
}
