export { sandboxOriginFor } from "./document.ts";
export { createSandbox, failedOnWasmMismatch, type RunBatchOptions, type Sandbox, type SandboxOptions } from "./host.ts";
export type { ChunkCheckpoint, ChunkConsole, ChunkError, ChunkErrorKind, ChunkOutcome, ChunkProgress, ConsoleLevel, ConsoleLine, SandboxChunk, SandboxTask } from "./protocol.ts";
export { CHECKPOINT_INTERVAL_MS } from "./protocol.ts";
