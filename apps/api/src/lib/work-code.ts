import { type Node, parse } from "acorn";
import { unprocessable } from "./problem.ts";

type ExportSpecifier = Node & { exported: { type: string; name?: string; value?: string } };
type ModuleNode = Node & { body: (Node & { specifiers?: ExportSpecifier[] })[] };

/**
 * Checks that work code is an ES module with a default export, by parsing it (never
 * evaluating it, so this runs on Workers too). Throws a 422 naming the line otherwise.
 * Returns the names of its exports (`default`, and optionally `reduce`, `canonicalize`).
 */
export function checkWorkCode(code: string): string[] {
  let program: ModuleNode;
  try {
    program = parse(code, { ecmaVersion: "latest", sourceType: "module", locations: true }) as ModuleNode;
  } catch (error) {
    const { loc } = error as { loc?: { line: number; column: number } };
    const where = loc ? ` at line ${loc.line}, column ${loc.column + 1}` : "";
    const message = (error as Error).message.replace(/\s*\(\d+:\d+\)$/, "");
    throw unprocessable(`code does not parse${where}: ${message}`, [{ path: "code", message: `line ${loc?.line ?? "?"}: ${message}` }]);
  }
  const exported = new Set<string>();
  for (const node of program.body) {
    if (node.type === "ExportDefaultDeclaration") exported.add("default");
    if (node.type === "ExportNamedDeclaration") {
      for (const specifier of node.specifiers ?? []) {
        exported.add(specifier.exported.name ?? specifier.exported.value ?? "");
      }
      const declaration = (node as Node & { declaration?: Node & { id?: { name: string }; declarations?: { id: { name?: string } }[] } }).declaration;
      if (declaration?.id?.name) exported.add(declaration.id.name);
      for (const d of declaration?.declarations ?? []) if (d.id.name) exported.add(d.id.name);
    }
  }
  if (!exported.has("default")) {
    throw unprocessable("code has no default export: export the work function with `export default`", [{ path: "code", message: "missing default export" }]);
  }
  return [...exported];
}

/** Lowercase hex SHA-256 of a text's UTF-8 bytes. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A module with its lowercase hex sha256, as the db stores it (a new task's, or a clone's). */
export async function wasmWithSha256(bytes: Uint8Array): Promise<{ bytes: Uint8Array; sha256: string }> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return { bytes, sha256: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("") };
}
