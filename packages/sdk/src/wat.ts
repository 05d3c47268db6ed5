// WebAssembly text (.wat) to a module's bytes with wabt, for the CLI's `--wasm f.wat` and the
// web task form's module field alike. wabt (~700 KB, itself WebAssembly) is loaded on first use.
// A workspace entry (`@crowdcompute/sdk/wat`), not part of the published SDK.

/** Where a compile stopped: `parse` (not WebAssembly text) or `validate` (text, but not a valid module). */
export class WatError extends Error {
  readonly stage: "parse" | "validate";

  constructor(stage: "parse" | "validate", message: string) {
    super(message);
    this.name = "WatError";
    this.stage = stage;
  }
}

/**
 * The binary module for `text`; `name` is what wabt's messages call the file (keep it short:
 * wabt holds it in a fixed buffer, and a long path came back with stray bytes). Throws
 * `WatError` with wabt's message, which names the line and column.
 */
export async function compileWat(name: string, text: string): Promise<Uint8Array> {
  const { default: wabt } = await import("wabt");
  const tools = await wabt();
  let module: ReturnType<typeof tools.parseWat>;
  try {
    module = tools.parseWat(name, text);
  } catch (error) {
    throw new WatError("parse", (error as Error).message);
  }
  try {
    module.validate();
    return new Uint8Array(module.toBinary({}).buffer);
  } catch (error) {
    throw new WatError("validate", (error as Error).message);
  } finally {
    module.destroy();
  }
}
