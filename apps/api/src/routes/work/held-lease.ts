// A lease request that waits for work (docs/architecture.md, "Dispatch", waiting volunteers):
// one object per request, with no closure, promise or timer of its own, since ten thousand
// wait in one process. It leases again when the waiters wake it and writes its answer when
// its wait ends, to the node response (HeldBody) or, off Node, to a stream.
import type { leaseRequestSchema } from "@crowdcompute/contract";
import { releaseLeases } from "@crowdcompute/db";
import type { z } from "@hono/zod-openapi";
import type { HeldBody } from "../../lib/held-answers.ts";
import type { WaitEnd, WaitRequest } from "../../lib/work-waiters.ts";
import { chunksReleased, type LeaseAnswer, type LeaseScope, leaseFor, membersOf, retryLater } from "./work.lease.ts";

const noTasks: ReadonlySet<string> = new Set();

export class HeldLease implements WaitRequest<LeaseAnswer> {
  readonly volunteerId: string;
  readonly source: string | null;
  readonly excluded: ReadonlySet<string>;
  readonly ms: number;
  private readonly scope: LeaseScope;
  private readonly request: z.output<typeof leaseRequestSchema>;
  private readonly idempotencyKey: string | undefined;
  private readonly first: LeaseAnswer;
  private readonly seconds: number;
  private readonly body: Pick<HeldBody, "send">;

  /**
   * `first`: the answer with no work it got before waiting; `seconds`, how long that took;
   * `body`, where the answer goes.
   */
  constructor(scope: LeaseScope, request: z.output<typeof leaseRequestSchema>, idempotencyKey: string | undefined, first: LeaseAnswer, seconds: number, body: Pick<HeldBody, "send">) {
    this.scope = scope;
    this.request = request;
    this.idempotencyKey = idempotencyKey;
    this.first = first;
    this.seconds = seconds;
    this.body = body;
    this.volunteerId = scope.claims.sub;
    this.source = scope.source;
    this.excluded = request.exclude.tasks.length > 0 ? new Set(request.exclude.tasks) : noTasks;
    this.ms = request.waitMs ?? 0;
  }

  async attempt(waiting: number): Promise<LeaseAnswer | null> {
    const { scope, request, idempotencyKey } = this;
    const again = await retryLater(() => leaseFor(scope, request, idempotencyKey, { keyClaimed: idempotencyKey !== undefined, waiting }));
    return again.chunks > 0 ? again : null;
  }

  end(how: WaitEnd<LeaseAnswer>): void {
    // It waited its whole time: it may ask again at once (and wait again).
    const answer = how.answer ?? (how.why === "timeout" ? { ...this.first, retryAfterMs: 0 } : this.first);
    this.scope.deps.work.leaseAnswered(answer.chunks, this.seconds);
    this.body.send(`{${membersOf(answer)}}`);
  }

  /**
   * Its client went while an attempt leased for it: the blocks go back now, not when the
   * volunteer's silence shows (LEASE_SILENT_MS) or its request key is released.
   */
  unclaimed(answer: LeaseAnswer): void {
    const { deps, claims } = this.scope;
    const leaseRowIds = answer.granted.map((block) => block.leaseRowId);
    void releaseLeases(deps.db, { volunteerId: claims.sub, leaseRowIds }).then(
      (released) => {
        chunksReleased(
          deps,
          answer.granted.filter((block) => released.includes(block.leaseRowId)).map((block) => block.taskId),
        );
      },
      (error: Error) => console.warn(`blocks leased for a waiting request whose client went were not released (they expire instead): ${error.message}`),
    );
  }
}
