// What a request takes from its process's bounds (process-bounds.ts; docs/architecture.md,
// "Bounds on what one caller holds"): a place among open follows and event streams, or input
// uploads, released when the response's body ends.
import type { AppContext } from "./context.ts";
import { tooManyRequests } from "./problem.ts";
import { boundsRetryAfterSeconds } from "./process-bounds.ts";
import { networkSource } from "./sources.ts";

/**
 * A place among the creator's (null: an anonymous stream's) and its source's open streams, or
 * a 429: released when the stream ends or its client goes (`releaseWith`).
 */
export function takeStreamSlot(c: AppContext, creatorId: string | null): () => void {
  const { bounds } = c.var.deps;
  const { streamsPerCreator, streamsPerSource } = bounds.config;
  const mine = creatorId === null ? () => {} : bounds.streams.take(`creator:${creatorId}`, streamsPerCreator);
  if (!mine) throw tooManyRequests(`this account has ${streamsPerCreator} follows and event streams open already (the most at once): close one first`, boundsRetryAfterSeconds * 1000);
  const source = bounds.streams.take(`source:${networkSource(c)}`, streamsPerSource);
  if (!source) {
    mine();
    throw tooManyRequests(`this address has ${streamsPerSource} follows and event streams open already (the most at once): close one first`, boundsRetryAfterSeconds * 1000);
  }
  return () => {
    mine();
    source();
  };
}

/** A place among the creator's running input uploads, or a 429. */
export function takeUploadSlot(c: AppContext, creatorId: string): () => void {
  const { bounds } = c.var.deps;
  const release = bounds.uploads.take(creatorId, bounds.config.uploadsPerCreator);
  if (!release)
    throw tooManyRequests(`this account has ${bounds.config.uploadsPerCreator} input uploads running already (the most at once): send parts one after another`, boundsRetryAfterSeconds * 1000);
  return release;
}

/**
 * `response` with a body that calls `release` once it ends, fails or is cancelled by its
 * client (a response without a body releases at once).
 */
export function releaseWith(response: Response, release: () => void): Response {
  if (!response.body) {
    release();
    return response;
  }
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
  return new Response(body, response);
}
