import type { LeasedBlock } from "@crowdcompute/sdk";

/** The page runs a block in parts of about this much of the task's work (ms) on every thread. */
const partMs = 2000;

/** A leased block this page holds: run, being run, or waiting for its last results to post. */
export interface HeldBlock {
  lease: LeasedBlock;
  /** The sandbox's chunk keys are `${seq}:${offset}`: short, and unique while the page lives. */
  seq: number;
  /** Offsets not yet handed to the sandbox, in order (reported ones, on a repeated lease request, are left out). */
  todo: number[];
  /** Offsets handed to the sandbox and not yet done. */
  running: number;
  /** The server said it is cancelled or taken back: its chunks are stopped and not reported. */
  dropped: boolean;
  /** Checkpoints an earlier attempt left, by offset: the chunk resumes from them (`ctx.resume`). */
  resume: Map<number, unknown> | null;
}

/**
 * The blocks leased and not finished, in the order they run, and how they are cut into parts
 * for the sandbox: about `partMs` of the task's work on every thread, from the wall time per
 * chunk seen so far.
 */
export class HeldBlocks {
  private blocks: HeldBlock[] = [];
  private nextSeq = 0;
  /** Mean wall time per chunk and thread, per task (ms). */
  private readonly chunkMs = new Map<string, number>();

  /** The blocks held now, in the order they run. */
  get list(): readonly HeldBlock[] {
    return this.blocks;
  }

  get leases(): LeasedBlock[] {
    return this.blocks.map((block) => block.lease);
  }

  /** Holds a block a lease request gave, to run its chunks not yet reported. */
  hold(lease: LeasedBlock): void {
    const reported = new Set(lease.reportedOffsets ?? []);
    const todo = [...lease.inputs.keys()].filter((offset) => !reported.has(offset));
    const resume = lease.checkpoints?.length ? new Map(lease.checkpoints.map((checkpoint) => [checkpoint.offset, checkpoint.state])) : null;
    this.blocks.push({ lease, seq: this.nextSeq++, todo, running: 0, dropped: false, resume });
  }

  /** Whether chunks of a block are in the sandbox. */
  computing(): boolean {
    return this.blocks.some((block) => block.running > 0);
  }

  /** Another block is wanted once every block in hand has gone into the sandbox. */
  wantsBlock(): boolean {
    return !this.blocks.some((block) => !block.dropped && block.todo.length > 0);
  }

  /** Chunks in the sandbox, or (while the runner runs) blocks with chunks to run. */
  busy(running: boolean): boolean {
    return this.blocks.some((block) => block.running > 0 || (running && block.todo.length > 0));
  }

  /** The leases of the blocks this page still answers for (those the server did not take back). */
  leaseIds(): string[] {
    return this.blocks.filter((block) => !block.dropped).map((block) => block.lease.leaseId);
  }

  /** The sandbox's keys of every chunk of the blocks with chunks in the sandbox. */
  runningKeys(): string[] {
    return this.blocks.filter((block) => block.running > 0).flatMap(chunkKeys);
  }

  /** None of the blocks held is run further or reported. */
  dropAll(): void {
    for (const block of this.blocks) block.dropped = true;
  }

  /** Stops these blocks (the server said they are cancelled or lost): the sandbox's keys of all their chunks, to cancel. */
  stop(leaseIds: Set<string>): string[] {
    const keys: string[] = [];
    for (const block of this.blocks) {
      if (!leaseIds.has(block.lease.leaseId)) continue;
      block.dropped = true;
      block.todo = [];
      keys.push(...chunkKeys(block));
    }
    this.forgetFinished();
    return keys;
  }

  /** Lets go of every block. */
  clear(): void {
    this.blocks = [];
  }

  /** The next part of a block to hand to the sandbox, counted as running. */
  nextPart(block: HeldBlock, threads: number): number[] {
    const part = block.todo.splice(0, this.partSize(block.lease.taskId, threads));
    block.running += part.length;
    return part;
  }

  /** A part of a block ended: blocks with nothing left to run are let go (their reports are in the outbox). */
  partEnded(block: HeldBlock, offsets: number[]): void {
    block.running -= offsets.length;
    this.forgetFinished();
  }

  /** Learns a task's wall time per chunk and thread (ms) from a part just run. */
  timed(taskId: string, perChunk: number): void {
    const known = this.chunkMs.get(taskId);
    this.chunkMs.set(taskId, known === undefined ? perChunk : known * 0.7 + perChunk * 0.3);
  }

  /** Chunks a part holds: about `partMs` of the task's work on every thread, at least 4 a thread. */
  private partSize(taskId: string, threads: number): number {
    const perChunk = this.chunkMs.get(taskId);
    if (perChunk === undefined) return Number.MAX_SAFE_INTEGER;
    return Math.max(threads * 4, Math.ceil((partMs * threads) / Math.max(perChunk, 0.001)));
  }

  private forgetFinished(): void {
    this.blocks = this.blocks.filter((block) => block.running > 0 || (!block.dropped && block.todo.length > 0));
  }
}

/** The sandbox's keys of every chunk of a block. */
function chunkKeys(block: HeldBlock): string[] {
  const keys: string[] = [];
  for (let offset = 0; offset < block.lease.inputs.length; offset++) keys.push(`${block.seq}:${offset}`);
  return keys;
}
