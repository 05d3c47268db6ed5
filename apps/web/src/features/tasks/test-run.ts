// The creator's test run: the first chunks in this browser's own sandbox, exactly as a
// volunteer's page would run them, before anything is published.
import { type ChunkOutcome, type ChunkProgress, createSandbox, type Sandbox } from "@crowdcompute/sandbox";
import type { Client } from "@crowdcompute/sdk";
import { useEffect, useRef } from "react";

interface TestRunChunk {
  index: number;
  input: unknown;
  outcome: ChunkOutcome;
  /** The result, parsed (ok outcomes only). */
  result?: unknown;
}

export interface TestRunReport {
  chunks: TestRunChunk[];
  wallMs: number;
}

export interface TestRunRequest {
  code: string;
  wasm: Uint8Array | null;
  webgpu: boolean;
  timeoutMs: number;
  inputs: { index: number; input: unknown }[];
  /** ctx.progress calls, at most 4 a second per chunk; `key` is the chunk index as text. */
  onProgress?: (progress: ChunkProgress) => void;
}

async function sha256Hex(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

const threads = Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2)));

/**
 * One sandbox frame for the page, made on the first test run and removed with the page.
 * `stop` cancels the run under way: its chunks end as `cancelled`.
 */
export function useTestRunner(client: Client) {
  const sandbox = useRef<Promise<Sandbox> | null>(null);
  const running = useRef<string[]>([]);
  useEffect(
    () => () => {
      void sandbox.current?.then((s) => s.destroy()).catch(() => {});
      sandbox.current = null;
    },
    [],
  );

  const run = async (request: TestRunRequest): Promise<TestRunReport> => {
    if (!sandbox.current) {
      const made = client.config().then(({ sandboxOrigin }) => createSandbox({ origin: sandboxOrigin, threads }));
      sandbox.current = made;
      made.catch(() => (sandbox.current = null));
    }
    const box = await sandbox.current;
    const chunks = request.inputs.map(({ index, input }) => ({ key: String(index), index, input }));
    running.current = chunks.map((chunk) => chunk.key);
    const started = performance.now();
    try {
      const outcomes = await box.runBatch(
        {
          // A fresh id per run: the frame restarts its workers when the task changes.
          taskId: `test-run-${crypto.randomUUID()}`,
          code: request.code,
          codeSha256: await sha256Hex(request.code),
          wasm: request.wasm ?? undefined,
          wasmSha256: request.wasm ? await sha256Hex(request.wasm) : null,
          webgpu: request.webgpu,
          timeoutMs: request.timeoutMs,
        },
        chunks,
        request.onProgress ? { onProgress: request.onProgress } : {},
      );
      const wallMs = performance.now() - started;
      return {
        wallMs,
        chunks: outcomes.map((outcome, i) => ({
          index: request.inputs[i]!.index,
          input: request.inputs[i]!.input,
          outcome,
          ...(outcome.ok ? { result: JSON.parse(outcome.resultJson) as unknown } : {}),
        })),
      };
    } finally {
      running.current = [];
    }
  };

  const stop = async () => {
    const keys = running.current;
    if (keys.length > 0 && sandbox.current) await (await sandbox.current).cancel(keys);
  };

  return { run, stop };
}
