import type { SandboxTask } from "@crowdcompute/sandbox";
import type { Client, LeasedBlock } from "@crowdcompute/sdk";

/**
 * Tasks' code and WebAssembly modules, fetched once per sha256 by the page (never by work
 * code). The page does not check a module against the hash the lease names: the sandbox does,
 * since it must not trust the page, and fails the block's chunks at once when it does not match;
 * the page then forgets those bytes (`forgetWasm`), so the next block fetches them again.
 */
export class TaskAssets {
  private readonly codeBySha = new Map<string, string>();
  private readonly wasmBySha = new Map<string, Promise<Uint8Array>>();

  /** The task as the sandbox runs it. */
  async sandboxTask(client: Client, lease: LeasedBlock, webgpu: boolean): Promise<SandboxTask> {
    let code = this.codeBySha.get(lease.codeSha256);
    if (code === undefined) {
      code = await client.taskCode(lease.taskId);
      this.codeBySha.set(lease.codeSha256, code);
    }
    return {
      taskId: lease.taskId,
      code,
      codeSha256: lease.codeSha256,
      wasm: lease.wasmSha256 ? await this.taskWasm(client, lease.taskId, lease.wasmSha256) : undefined,
      wasmSha256: lease.wasmSha256,
      webgpu: webgpu && Boolean(lease.requires?.webgpu),
      timeoutMs: lease.timeoutMs,
      memoryMb: lease.memoryMb,
    };
  }

  /** Drops a module the sandbox refused: the next block of its task fetches it again. */
  forgetWasm(sha256: string): void {
    this.wasmBySha.delete(sha256);
  }

  private taskWasm(client: Client, taskId: string, sha256: string): Promise<Uint8Array> {
    let wasm = this.wasmBySha.get(sha256);
    if (!wasm) {
      wasm = client.taskWasm(taskId);
      this.wasmBySha.set(sha256, wasm);
      // A failed fetch is tried again next time.
      wasm.catch(() => this.wasmBySha.delete(sha256));
    }
    return wasm;
  }
}
