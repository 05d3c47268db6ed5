export { type RunBatchOptions, type Sandbox, type SandboxOptions, createSandbox, sandboxOriginFor } from "./host.ts";
export type { ChunkError, ChunkErrorKind, ChunkOutcome, ChunkProgress, SandboxChunk, SandboxTask } from "./protocol.ts";
