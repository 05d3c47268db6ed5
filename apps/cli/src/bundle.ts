// Work code as the API takes it: one ES module, the file and everything it imports. The
// bundling itself is the SDK's (`@crowdcompute/sdk/node`, shared with the job API); here its
// refusals become usage errors, since nothing was sent.
import { type BundledWork, bundleWork as bundle, WorkCodeError } from "@crowdcompute/sdk/node";
import { UsageError } from "./errors.ts";

export type { BundledWork };

/**
 * Bundles `entry` with esbuild into a single browser ES module, so work code may import
 * npm libraries and other files. A syntax error, an unresolved import, a missing default
 * export or an oversized result is a usage error: nothing is sent.
 */
export async function bundleWork(entry: string, { minify = false }: { minify?: boolean } = {}): Promise<BundledWork> {
  try {
    return await bundle(entry, { minify });
  } catch (error) {
    if (!(error instanceof WorkCodeError)) throw error;
    throw new UsageError(error.problem === "too-large" && !minify ? `${error.message} (try --minify)` : error.message);
  }
}
