export { type BlockChunk, blockChunks, blockReports, type ChunkOutcomeReport, chunksOfLeases, resultsRequestJson } from "./blocks.ts";
export { ApiError, type Client, type ClientOptions, createClient } from "./client.ts";
export { cursorOfLine, type FollowedLine, type FollowOptions } from "./follow.ts";
export { InputUploadError, inputParts, type UploadOptions, uploadInputParts, uploadPartChars } from "./inputs.ts";
export { escapeControlChars, escapeJsonText } from "./text.ts";
export type * from "./types.ts";
