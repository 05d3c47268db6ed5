// A lease request that waits for work (docs/architecture.md, "Dispatch", waiting volunteers):
// one object per request, with no closure, promise or timer of its own, since ten thousand
// wait in one process. It leases again when the waiters wake it and writes its answer when
// its wait ends, to the node response (HeldBody) or, off Node, to a stream. One held as it
// arrived in a herd leases first when its turn comes (`first`).
import type { leaseRequestSchema } from "@crowdcompute/contract";
import { releaseLeases } from "@crowdcompute/db";
import type { z } from "@hono/zod-openapi";
import type { HeldBody } from "../../lib/held-answers.ts";
import { secondsSince } from "../../lib/metrics.ts";
import type { WaitEnd, WaitRequest } from "../../lib/work-waiters.ts";
import { chunksReleased, type LeaseAnswer, type LeaseScope, leaseFor, membersOf, retryLater } from "./work.lease.ts";

const noTasks: ReadonlySet<string> = new Set();

/** What a first lease that failed tells its volunteer: nothing was leased; ask again in a second (a lost race's Retry-After). */
const failedRetryMs = 1_000;

export class HeldLease implements WaitRequest<LeaseAnswer> {
  readonly volunteerId: string;
  readonly source: string | null;
  readonly excluded: ReadonlySet<string>;
  readonly ms: number;
  private readonly scope: LeaseScope;
  private readonly request: z.output<typeof leaseRequestSchema>;
  private readonly idempotencyKey: string | undefined;
  private readonly body: Pick<HeldBody, "send">;
  private readonly startedAt: number;
  /** The answer with no work its first lease got (null until that lease ran), and how long that took. */
  private firstAnswer: LeaseAnswer | null;
  private seconds = 0;

  /**
   * `first`: the answer with no work its lease got before it waited, or null when it waits
   * before leasing (`WorkWaiters.holdArriving`); `startedAt`, when its handler began
   * (`performance.now()`); `body`, where the answer goes.
   */
  constructor(scope: LeaseScope, request: z.output<typeof leaseRequestSchema>, idempotencyKey: string | undefined, body: Pick<HeldBody, "send">, startedAt: number, first: LeaseAnswer | null) {
    this.scope = scope;
    this.request = request;
    this.idempotencyKey = idempotencyKey;
    this.body = body;
    this.startedAt = startedAt;
    this.firstAnswer = first;
    if (first) this.seconds = secondsSince(startedAt);
    this.volunteerId = scope.claims.sub;
    this.source = scope.source;
    this.excluded = request.exclude.tasks.length > 0 ? new Set(request.exclude.tasks) : noTasks;
    this.ms = request.waitMs ?? 0;
  }

  async first(): Promise<LeaseAnswer | null> {
    const { scope, request, idempotencyKey } = this;
    const answer = await retryLater(() => leaseFor(scope, request, idempotencyKey));
    this.seconds = secondsSince(this.startedAt);
    // Work, or a bound that holds it back (no notification changes that): answered now.
    if (answer.chunks > 0 || answer.bounded !== null) return answer;
    this.firstAnswer = answer;
    return null;
  }

  async attempt(waiting: number): Promise<LeaseAnswer | null> {
    const { scope, request, idempotencyKey } = this;
    // Woken only once its first lease ran: its key is its own by then.
    const again = await retryLater(() => leaseFor(scope, request, idempotencyKey, { keyClaimed: idempotencyKey !== undefined, waiting }));
    return again.chunks > 0 ? again : null;
  }

  end(how: WaitEnd<LeaseAnswer>): void {
    const answer = how.answer ?? this.withoutWork(how.why);
    this.scope.deps.work.leaseAnswered(answer.chunks, this.seconds);
    this.body.send(`{${membersOf(answer)}}`);
  }

  /** The answer when its wait ends with no work: its first lease's, or none yet. */
  private withoutWork(why: Extract<WaitEnd<LeaseAnswer>, { answer: null }>["why"]): LeaseAnswer {
    const first = this.firstAnswer;
    // It waited its whole time: it may ask again at once (and wait again).
    if (first) return why === "timeout" ? { ...first, retryAfterMs: 0 } : first;
    const retryAfterMs = why === "timeout" ? 0 : why === "failed" ? failedRetryMs : this.scope.deps.env.idleRetryMs;
    return { leases: "", granted: [], retryAfterMs, chunks: 0, bounded: null };
  }

  /**
   * Its client went while an attempt leased for it: the blocks go back now, not when the
   * volunteer's silence shows (LEASE_SILENT_MS) or its request key is released.
   */
  unclaimed(answer: LeaseAnswer): void {
    if (answer.granted.length === 0) return;
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
