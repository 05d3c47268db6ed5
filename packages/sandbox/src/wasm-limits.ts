// Caps every memory a WebAssembly module defines at the task's memory budget by rewriting the
// module's memory section (docs/architecture.md, "The sandbox"). A module's own memory grows
// with the `memory.grow` instruction, which no JS wrapper sees; with a declared maximum the
// engine refuses growth past it (memory.grow returns -1, as on a machine out of memory).
// Used by the frame (the task's module) and by workers (modules work code compiles).

export interface WasmMemoryLimits {
  /** Each memory the module defines (not imports): its maximum in bytes after the cap. */
  maxBytes: number[];
  /** Each defined memory's initial size in bytes. */
  initialBytes: number[];
}

/** The module needs more memory than the budget, or bounds it in a way this parser does not know. */
export class WasmLimitError extends RangeError {}
/** The module's sections do not parse: the engine would refuse it too. */
export class WasmMalformedError extends Error {}

const MEMORY_SECTION = 5;
const HAS_MAX = 0x01;
const SHARED = 0x02;
const MEMORY64 = 0x04;
const CUSTOM_PAGE_SIZE = 0x08;
const WASM_PAGE = 65536;

/**
 * The module's bytes with each defined memory's maximum at most `budgetBytes`, and the
 * memories' limits. Throws a WasmLimitError when a memory starts over the budget or uses
 * limits this parser does not know (so none goes unbounded), and a WasmMalformedError when
 * its sections do not parse.
 */
export function capWasmMemories(bytes: Uint8Array, budgetBytes: number): { bytes: Uint8Array; limits: WasmMemoryLimits } {
  const limits: WasmMemoryLimits = { maxBytes: [], initialBytes: [] };
  if (bytes.length < 8) return { bytes, limits };
  // Sections other than memory are copied as they are, not spread (a module may be 16 MiB).
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const [size, start] = readLeb(bytes, pos + 1);
    const end = start + size;
    if (end > bytes.length) throw new WasmMalformedError("the module is malformed (a section runs past its end)");
    if (id !== MEMORY_SECTION) {
      parts.push(bytes.subarray(pos, end));
    } else {
      const body = rewriteMemories(bytes.subarray(start, end), budgetBytes, limits);
      parts.push(Uint8Array.from([id, ...writeLeb(body.length), ...body]));
    }
    pos = end;
  }
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return { bytes: out, limits };
}

function rewriteMemories(section: Uint8Array, budgetBytes: number, limits: WasmMemoryLimits): number[] {
  const [count, countEnd] = readLeb(section, 0);
  const out = [...writeLeb(count)];
  let pos = countEnd;
  for (let m = 0; m < count; m++) {
    const flags = section[pos++]!;
    if ((flags & ~(HAS_MAX | SHARED | MEMORY64 | CUSTOM_PAGE_SIZE)) !== 0) {
      throw new WasmLimitError(`the sandbox cannot bound a WebAssembly memory with limit flags 0x${flags.toString(16)}`);
    }
    const [initial, initialEnd] = readLeb(section, pos);
    pos = initialEnd;
    let max: number | undefined;
    if (flags & HAS_MAX) [max, pos] = readLeb(section, pos);
    let pageLog2: number | undefined;
    if (flags & CUSTOM_PAGE_SIZE) [pageLog2, pos] = readLeb(section, pos);
    const page = pageLog2 === undefined ? WASM_PAGE : 2 ** pageLog2;
    const capPages = Math.floor(budgetBytes / page);
    if (initial > capPages) {
      throw new WasmLimitError(`a WebAssembly memory of the module starts at ${mib(initial * page)}, over the task's memory budget of ${mib(budgetBytes)}`);
    }
    const capped = max === undefined ? capPages : Math.min(max, capPages);
    limits.initialBytes.push(initial * page);
    limits.maxBytes.push(capped * page);
    out.push(flags | HAS_MAX, ...writeLeb(initial), ...writeLeb(capped));
    if (pageLog2 !== undefined) out.push(...writeLeb(pageLog2));
  }
  for (let i = pos; i < section.length; i++) out.push(section[i]!);
  return out;
}

/** An unsigned LEB128 (u32 or u64, as a Number: page counts stay far below 2^53). */
function readLeb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  let pos = at;
  for (;;) {
    if (pos >= bytes.length || pos - at > 10) throw new WasmMalformedError("the module is malformed (a LEB128 number runs past its end)");
    const byte = bytes[pos++]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return [value, pos];
  }
}

function writeLeb(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    out.push(byte);
  } while (rest > 0);
  return out;
}

export const mib = (bytes: number): string => `${Math.round((bytes / 1048576) * 10) / 10} MiB`;
