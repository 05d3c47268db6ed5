import type { Client } from "@crowdcompute/sdk";

type RunnerState = "stopped" | "starting" | "running" | "waiting" | "pausing" | "paused" | "error";

export interface RunnerStats {
  state: RunnerState;
  chunksDone: number;
  chunksFailed: number;
  cpuMs: number;
  /** Chunks done per second over the last few seconds. */
  chunksPerSec: number;
  /** Chunks computed per task id in this session. */
  tasks: Record<string, number>;
  volunteerId: string | null;
  /** Credit the server granted (ms of CPU whose results won their quorum); null until known. */
  credit: number | null;
  /** Name, description and creator of the tasks this browser computes for, by task id. */
  taskInfo: Record<string, TaskInfo>;
  /** While waiting for work: when the next lease request goes out (ms since the epoch). */
  nextLeaseAt: number | null;
  message: string | null;
  /** What runs in the sandbox now: parts of blocks, by task, since when (ms since the epoch). */
  running: RunningPart[];
}

export interface RunningPart {
  taskId: string;
  /** The task indexes of the part's first and last chunk. */
  firstIndex: number;
  lastIndex: number;
  chunks: number;
  since: number;
  /** The latest `ctx.progress` of the part's chunks that reported one, by chunk index. */
  progress: { index: number; fraction: number; message?: string }[];
}

export interface TaskInfo {
  name: string;
  description: string;
  /** The creator's display name; null when it has none. */
  creator: string | null;
  creatorId: string;
}

const creditRefreshMs = 5_000;
const rateWindowMs = 5_000;

/** The runner's stats, each change handed to `onChange`; and what the server tells of them (credit, task names). */
export class StatsKeeper {
  private stats: RunnerStats = {
    state: "stopped",
    chunksDone: 0,
    chunksFailed: 0,
    cpuMs: 0,
    chunksPerSec: 0,
    tasks: {},
    volunteerId: null,
    credit: null,
    taskInfo: {},
    nextLeaseAt: null,
    message: null,
    running: [],
  };
  private readonly onChange: (stats: RunnerStats) => void;
  private readonly doneAt: { t: number; n: number }[] = [];
  private readonly askedAbout = new Set<string>();
  private creditAskedAt = 0;

  constructor(onChange: (stats: RunnerStats) => void) {
    this.onChange = onChange;
  }

  get current(): RunnerStats {
    return this.stats;
  }

  update(patch: Partial<RunnerStats>): void {
    this.stats = { ...this.stats, ...patch };
    this.onChange(this.stats);
  }

  /** Counts what a part of a block of this task did. */
  counted(taskId: string, done: number, failed: number, cpuMs: number): void {
    const now = performance.now();
    this.doneAt.push({ t: now, n: done });
    while (this.doneAt.length > 0 && now - this.doneAt[0]!.t > rateWindowMs) this.doneAt.shift();
    const recent = this.doneAt.reduce((sum, sample) => sum + sample.n, 0);
    this.update({
      chunksDone: this.stats.chunksDone + done,
      chunksFailed: this.stats.chunksFailed + failed,
      cpuMs: this.stats.cpuMs + Math.round(cpuMs),
      chunksPerSec: Math.round((recent * 1000) / rateWindowMs),
      tasks: done > 0 ? { ...this.stats.tasks, [taskId]: (this.stats.tasks[taskId] ?? 0) + done } : this.stats.tasks,
    });
  }

  partStarted(part: RunningPart): void {
    this.update({ running: [...this.stats.running, part] });
  }

  partEnded(part: RunningPart): void {
    this.update({ running: this.stats.running.filter((other) => other !== part) });
  }

  /** Keeps the latest progress of each chunk of a running part (the sandbox sends at most 4 a second a chunk). */
  progressed(part: RunningPart, entry: RunningPart["progress"][number]): void {
    part.progress = [...part.progress.filter((other) => other.index !== entry.index), entry].slice(-32);
    if (this.stats.running.includes(part)) this.update({ running: [...this.stats.running] });
  }

  /** Fetches a task's name and description once, so the volunteer knows what runs here. */
  learnAbout(client: Client, taskId: string): void {
    if (this.askedAbout.has(taskId)) return;
    this.askedAbout.add(taskId);
    client
      .taskSummary(taskId)
      .then(({ name, description, creator, creatorId }) => this.update({ taskInfo: { ...this.stats.taskInfo, [taskId]: { name, description, creator, creatorId } } }))
      .catch(() => this.askedAbout.delete(taskId));
  }

  /** Asks the server for this volunteer's credit, at most every few seconds; figures are a nicety, so errors are ignored. */
  refreshCredit(client: Client): void {
    if (Date.now() - this.creditAskedAt < creditRefreshMs) return;
    this.creditAskedAt = Date.now();
    client
      .volunteerFigures()
      .then((figures) => this.update({ credit: figures.credit }))
      .catch(() => {});
  }
}
