import type { SandboxTask } from "@crowdcompute/sandbox";
import type { Client, LeasedBlock } from "@crowdcompute/sdk";

/**
 * Tasks' code and WebAssembly modules, fetched once per sha256 by the page (never by work
 * code); a module is checked against the hash the lease names before it is used.
 */
export class TaskAssets {
  private readonly codeBySha = new Map<string, string>();
  private readonly wasmBySha = new Map<string, Promise<Uint8Array>>();

  /** The task as the sandbox runs it, or why it cannot run here (a module that is not the one named). */
  async sandboxTask(client: Client, lease: LeasedBlock, webgpu: boolean): Promise<SandboxTask | string> {
    let code = this.codeBySha.get(lease.codeSha256);
    if (code === undefined) {
      code = await client.taskCode(lease.taskId);
      this.codeBySha.set(lease.codeSha256, code);
    }
    let wasm: Uint8Array | undefined;
    if (lease.wasmSha256) {
      try {
        wasm = await this.taskWasm(client, lease.taskId, lease.wasmSha256);
      } catch (error) {
        if (error instanceof WasmMismatch) return truncate(error.message);
        throw error;
      }
    }
    return {
      taskId: lease.taskId,
      code,
      codeSha256: lease.codeSha256,
      wasm,
      wasmSha256: lease.wasmSha256,
      webgpu: webgpu && Boolean(lease.requires?.webgpu),
      timeoutMs: lease.timeoutMs,
      memoryMb: lease.memoryMb,
    };
  }

  private taskWasm(client: Client, taskId: string, sha256: string): Promise<Uint8Array> {
    let wasm = this.wasmBySha.get(sha256);
    if (!wasm) {
      wasm = client.taskWasm(taskId).then(async (bytes) => {
        const actual = await sha256Hex(bytes);
        if (actual !== sha256.toLowerCase()) throw new WasmMismatch(`task ${taskId}: its wasm hashes to ${actual}, not ${sha256}`);
        return bytes;
      });
      this.wasmBySha.set(sha256, wasm);
      // A failed fetch is tried again next time; a mismatch too (the server may have been mid-deploy).
      wasm.catch(() => this.wasmBySha.delete(sha256));
    }
    return wasm;
  }
}

class WasmMismatch extends Error {}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function truncate(message: string): string {
  return message.length > 1000 ? `${message.slice(0, 1000)}…` : message;
}
