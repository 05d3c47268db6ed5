import { type ChunkCheckpoint, type ChunkOutcome, type ChunkProgress, failedOnWasmMismatch, type Sandbox } from "@crowdcompute/sandbox";
import type { Client, LeasedBlock } from "@crowdcompute/sdk";
import { echoConsole } from "./block-reports.ts";
import type { HeldBlock, HeldBlocks } from "./held-blocks.ts";
import type { RunningPart, StatsKeeper } from "./runner-stats.ts";
import type { SinceLastBeat } from "./since-last-beat.ts";
import { TaskAssets } from "./task-assets.ts";

const partsInSandbox = 2;

export interface SandboxPartsOptions {
  blocks: HeldBlocks;
  stats: StatsKeeper;
  /** Where chunks' progress and checkpoints wait for the next heartbeat. */
  sinceLastBeat: SinceLastBeat;
  /** The runner's settings as they are now. */
  settings: () => { threads: number; webgpu: boolean; showConsole: boolean };
  /** A part's outcomes, to report (not called for a block dropped while it ran). */
  outcomes: (block: HeldBlock, outcomes: ChunkOutcome[], offsets: number[]) => void;
  /** A part ended, whichever way. */
  ended: () => void;
}

/**
 * Runs the blocks held in the sandbox, part by part (held-blocks.ts cuts them), with two parts
 * in the sandbox: the one running and the next, which joins the same workers, so no worker
 * waits at a block boundary. What the chunks say while they run goes to the page's stats and
 * the next heartbeat.
 */
export class SandboxParts {
  private readonly blocks: HeldBlocks;
  private readonly stats: StatsKeeper;
  private readonly sinceLastBeat: SinceLastBeat;
  private readonly settings: SandboxPartsOptions["settings"];
  private readonly outcomes: SandboxPartsOptions["outcomes"];
  private readonly ended: () => void;
  private readonly assets = new TaskAssets();
  /** Parts handed to the sandbox and not yet ended. */
  private parts = 0;

  constructor(options: SandboxPartsOptions) {
    this.blocks = options.blocks;
    this.stats = options.stats;
    this.sinceLastBeat = options.sinceLastBeat;
    this.settings = options.settings;
    this.outcomes = options.outcomes;
    this.ended = options.ended;
  }

  /** Keeps two parts in the sandbox: the one running and the next. */
  feed(client: Client, sandbox: Sandbox): void {
    for (const block of this.blocks.list) {
      while (this.parts < partsInSandbox && !block.dropped && block.todo.length > 0) {
        const part = this.blocks.nextPart(block, this.settings().threads);
        this.parts += 1;
        void this.run(client, sandbox, block, part).finally(() => {
          this.parts -= 1;
          this.ended();
        });
      }
      if (this.parts >= partsInSandbox) return;
    }
  }

  /** Runs chunks of one block in the sandbox and hands their outcomes on to be reported. */
  private async run(client: Client, sandbox: Sandbox, block: HeldBlock, offsets: number[]): Promise<void> {
    const { lease } = block;
    try {
      const task = await this.assets.sandboxTask(client, lease, this.settings().webgpu);
      this.stats.learnAbout(client, lease.taskId);
      const started = performance.now();
      const part: RunningPart = {
        taskId: lease.taskId,
        firstIndex: lease.firstIndex + offsets[0]!,
        lastIndex: lease.firstIndex + offsets.at(-1)!,
        chunks: offsets.length,
        since: Date.now(),
        progress: [],
      };
      this.stats.partStarted(part);
      const outcomes = await sandbox
        .runBatch(
          task,
          offsets.map((offset) => {
            const chunk = { key: `${block.seq}:${offset}`, index: lease.firstIndex + offset, input: lease.inputs[offset], entry: lease.entry };
            return block.resume?.has(offset) ? { ...chunk, resume: block.resume.get(offset) } : chunk;
          }),
          { onProgress: (progress) => this.progressed(part, lease, progress), onCheckpoint: (checkpoint) => this.checkpointed(lease, checkpoint) },
        )
        .finally(() => this.stats.partEnded(part));
      if (lease.wasmSha256 && outcomes.some(failedOnWasmMismatch)) this.assets.forgetWasm(lease.wasmSha256);
      this.sinceLastBeat.ended(lease.leaseId, offsets);
      if (this.settings().showConsole) echoConsole(lease, offsets, outcomes);
      // Wall time per chunk and thread, as the sandbox delivered them (rests included).
      this.blocks.timed(lease.taskId, ((performance.now() - started) * Math.min(this.settings().threads, offsets.length)) / offsets.length);
      if (!block.dropped) this.outcomes(block, outcomes, offsets);
    } catch (error) {
      // The sandbox refused the code (a hash mismatch; a module's fails the chunks instead) or is gone: fail nothing on the server,
      // let the block expire and be reissued, and say what happened.
      this.stats.update({ message: error instanceof Error ? error.message : String(error) });
    } finally {
      this.blocks.partEnded(block, offsets);
    }
  }

  /** Shows the latest progress of a running part's chunks, and keeps it for the next heartbeat. */
  private progressed(part: RunningPart, lease: LeasedBlock, progress: ChunkProgress): void {
    const offset = Number(progress.key.slice(progress.key.indexOf(":") + 1));
    this.stats.progressed(part, { index: lease.firstIndex + offset, fraction: progress.fraction, ...(progress.message === undefined ? {} : { message: progress.message }) });
    this.sinceLastBeat.progressed(lease.leaseId, offset, progress.message === undefined ? { fraction: progress.fraction } : { fraction: progress.fraction, message: progress.message });
  }

  /** Keeps the latest checkpoint of each running chunk for the next heartbeat (the sandbox sends at most 2 a second a chunk). */
  private checkpointed(lease: LeasedBlock, checkpoint: ChunkCheckpoint): void {
    const offset = Number(checkpoint.key.slice(checkpoint.key.indexOf(":") + 1));
    this.sinceLastBeat.checkpointed(lease.leaseId, offset, checkpoint.json);
  }
}
