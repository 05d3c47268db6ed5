export { type RunBatchOptions, type Sandbox, type SandboxOptions, createSandbox } from "./host.ts";
export { sandboxOriginFor } from "./document.ts";
export type { ChunkError, ChunkErrorKind, ChunkOutcome, ChunkProgress, SandboxChunk, SandboxTask } from "./protocol.ts";
