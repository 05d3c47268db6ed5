// `@crowdcompute/sdk/node`: the SDK for Node scripts. Everything the browser entry has, and
// what needs Node: bundling work code with esbuild, reading input files, and the job API
// (`cc.compute`). The web app imports only `@crowdcompute/sdk`, so esbuild stays out of it.
import { type Client, type ClientOptions, createClient as createCoreClient } from "../client.ts";
import { type ComputeOptions, compute, type Job, type JobInputs, type JobWork } from "./job.ts";

export * from "../index.ts";
export { type BundledWork, bundleWork, bundleWorkFunction, maxCodeBytes, WorkCodeError, type WorkCodeProblem } from "./bundle.ts";
export { ndjsonFileParts } from "./files.ts";
export { type ComputeOptions, compute, Job, type JobConsoleLine, type JobConsoleOutput, type JobEvents, type JobInputs, type JobRunningChunk, type JobWork } from "./job.ts";

/** The client, with `compute` for jobs. */
export type NodeClient = Omit<Client, "withToken"> & {
  withToken(token: string): NodeClient;
  /**
   * Bundles `work` (a module file, or a self-contained function), creates a task over `inputs`
   * (an array, any iterable of JSON values, or a range) with every task option the API takes,
   * uploads large inputs in parts, starts it, and returns its `Job`.
   * @example
   * const job = await cc.compute([1, 2, 3], (n) => n * n);
   * for await (const r of job.results()) console.log(r.index, r.status === "done" ? r.result : r.error);
   */
  compute(inputs: JobInputs, work: JobWork, options?: ComputeOptions): Promise<Job>;
};

/**
 * A typed client for Node scripts.
 * @example
 * import { createClient } from "@crowdcompute/sdk/node";
 * const cc = createClient({ baseUrl: "http://localhost:8787", token: process.env.CROWDCOMPUTE_API_KEY });
 * const job = await cc.compute({ start: 0, end: 1_000_000, size: 10_000 }, new URL("./work.js", import.meta.url));
 * job.on("progress", (task) => console.log(task.counts));
 * await job.done();
 */
export function createClient(options: ClientOptions = {}): NodeClient {
  const client = createCoreClient(options);
  return {
    ...client,
    withToken: (token: string) => createClient({ ...options, token }),
    compute: (inputs, work, computeOptions) => compute(client, inputs, work, computeOptions),
  };
}
