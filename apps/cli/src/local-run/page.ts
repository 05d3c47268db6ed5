// The dry-run page (browser side): the real sandbox host, driven by `crowdcompute run`.
import { type ChunkOutcome, createSandbox, type Sandbox, type SandboxChunk, type SandboxTask } from "@crowdcompute/sandbox";

/** A sandbox task as it crosses `page.evaluate` (JSON): the module as base64. */
export type LocalTask = Omit<SandboxTask, "wasm"> & { wasmBase64: string | null };

let sandbox: Sandbox | null = null;
let decoded: { base64: string; bytes: Uint8Array } | null = null;

const api = {
  async init(origin: string, threads: number): Promise<void> {
    sandbox = await createSandbox({ origin, threads });
  },
  async runBatch({ wasmBase64, ...task }: LocalTask, chunks: SandboxChunk[]): Promise<ChunkOutcome[]> {
    if (!sandbox) throw new Error("call init first");
    if (wasmBase64 && decoded?.base64 !== wasmBase64) decoded = { base64: wasmBase64, bytes: Uint8Array.from(atob(wasmBase64), (c) => c.charCodeAt(0)) };
    // The same bytes every batch, so the host checks their hash once.
    return sandbox.runBatch({ ...task, ...(wasmBase64 ? { wasm: decoded!.bytes } : {}) }, chunks);
  },
};

export type LocalRunApi = typeof api;

(globalThis as unknown as { ccLocal: LocalRunApi }).ccLocal = api;
