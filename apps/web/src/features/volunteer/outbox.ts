import { ApiError, type BlockReportTexts, type Client, type LeaseRequest, type ResultsResponse } from "@crowdcompute/sdk";
import { approximateBytes } from "./block-reports.ts";

/** Keeps a request body well under the server's 32 MiB limit (results are at most 1 MiB each). */
const maxPostBytes = 16 * 1024 * 1024;
const maxReportsPerPost = 256;

/**
 * Reports the server has not taken yet, and the post that sends them: one post at a time, as
 * much as one request takes. Reports that fail to post are kept and sent again, so a network
 * blip loses nothing.
 */
export class Outbox {
  /** Waiting to post; kept across failures. */
  private waiting: BlockReportTexts[] = [];
  /** The reports of the post in flight: their blocks are no longer held, and not yet reported. */
  private sending: BlockReportTexts[] = [];
  private inFlight: Promise<void> | null = null;

  /** Whether a post is in flight. */
  get posting(): boolean {
    return this.inFlight !== null;
  }

  get empty(): boolean {
    return this.waiting.length === 0;
  }

  add(reports: BlockReportTexts[]): void {
    this.waiting.push(...reports);
  }

  /** Drops the reports waiting (those of a post in flight still count in `leaseIds`). */
  clear(): void {
    this.waiting = [];
  }

  /** The leases of the reports in flight and waiting. */
  leaseIds(): string[] {
    return [...this.sending, ...this.waiting].map((report) => report.leaseId);
  }

  /**
   * Posts the reports waiting (as much as one request takes), and leases `next` in the same
   * round trip when given. `answered` gets the server's answer; `failed` gets an error once the
   * reports worth sending again are back in the outbox. The post ends after either.
   */
  post(client: Client, next: LeaseRequest | undefined, idempotencyKey: string | undefined, answered: (response: ResultsResponse) => void, failed: (error: unknown) => Promise<void>): Promise<void> {
    const reports: BlockReportTexts[] = [];
    let bytes = 0;
    while (this.waiting.length > 0 && reports.length < maxReportsPerPost) {
      const size = approximateBytes(this.waiting[0]!);
      if (reports.length > 0 && bytes + size > maxPostBytes) break;
      bytes += size;
      reports.push(this.waiting.shift()!);
    }
    this.sending = reports;
    const request = client.submitResults(reports, next, idempotencyKey ? { idempotencyKey } : {}).then(answered, (error: unknown) => {
      // Refused for good (a 4xx): the server would refuse them again, so they go.
      if (retryable(error)) this.waiting.unshift(...reports);
      return failed(error);
    });
    this.inFlight = request.finally(() => {
      this.inFlight = null;
      this.sending = [];
    });
    return this.inFlight;
  }
}

/**
 * Whether reports that failed to post should be posted again: yes after a network error, a
 * 5xx or a 429; no after another 4xx (the server refused them for good, and would again).
 */
function retryable(error: unknown): boolean {
  return !(error instanceof ApiError) || error.status >= 500 || error.status === 429;
}
