import canonicalize from "canonicalize";

/**
 * RFC 8785 canonical JSON of a value parsed from JSON, which is how a replicated task's copies
 * are compared (docs/architecture.md, "Replication, trust and reduce"). For such a value it
 * differs from JSON.stringify's only in object key order (numbers and strings are written
 * alike), so a value whose objects' keys are already in sorted order — numbers, arrays of
 * them, objects written with sorted keys — takes JSON.stringify, about five times faster than
 * the canonicalize library; any other goes to the library.
 */
export function canonicalJson(value: unknown): string {
  return (keysInOrder(value) ? JSON.stringify(value) : canonicalize(value)) ?? "null";
}

/**
 * True when every object in `value` lists its keys in sorted order (UTF-16 code units, as RFC
 * 8785 sorts) and every string is well formed (the library refuses a lone surrogate, and so
 * the value goes to it).
 */
function keysInOrder(value: unknown): boolean {
  if (typeof value === "string") return wellFormed(value);
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!keysInOrder(item)) return false;
    return true;
  }
  let previous: string | null = null;
  for (const key of Object.keys(value)) {
    if ((previous !== null && !(previous < key)) || !wellFormed(key)) return false;
    previous = key;
    if (!keysInOrder((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/** String.prototype.isWellFormed (ES2024: Node 20+, workerd; this package's TypeScript lib predates it). */
const wellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();
