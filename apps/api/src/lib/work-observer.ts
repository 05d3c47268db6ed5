// What the work routes report about the requests they answer (`Deps.work`): to the Node
// entry's metrics (lib/metrics.ts, node/metrics.ts), or to nobody.

/** What the work routes report about each request they answered. */
export interface WorkObserver {
  /** A lease request handed out `chunks` chunks in `seconds`. */
  leaseAnswered(chunks: number, seconds: number): void;
  /** A results request took `accepted` reports, rejected `rejected`, and leased `leased` chunks of its `next` batch, in `seconds`. */
  resultsAnswered(counts: { accepted: number; rejected: number; leased: number }, seconds: number): void;
}

export const unobservedWork: WorkObserver = { leaseAnswered() {}, resultsAnswered() {} };
