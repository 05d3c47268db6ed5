// Text that volunteers and creators wrote, made safe to print on a terminal (docs/architecture.md,
// "Printing what others wrote"). A progress message, an error, a console line or a name may hold
// escape sequences a terminal acts on (set the title, write the clipboard, clear the screen, fake
// a hyperlink) or characters that move the cursor back over what was printed (CR, backspace).

// Ranges of code points built as text: a regex literal holding them trips Biome's
// noControlCharactersInRegex, which exists to catch them by mistake.
const range = (from: number, to: number) => `\\u${from.toString(16).padStart(4, "0")}-\\u${to.toString(16).padStart(4, "0")}`;
const layout = `${range(0x61c, 0x61c)}${range(0x200e, 0x200f)}${range(0x202a, 0x202e)}${range(0x2066, 0x2069)}`;
const c1AndDel = range(0x7f, 0x9f);
/**
 * What a terminal may act on instead of showing: C0 controls (ESC, BEL, BS, CR, …), DEL, C1
 * controls (U+0080–U+009F: CSI U+009B, OSC U+009D, …), and the bidirectional marks, overrides
 * and isolates that reorder what a line shows. Tab and newline are among them: `multiline`
 * keeps those two.
 */
const unsafe = new RegExp(`[${range(0, 0x1f)}${c1AndDel}${layout}]`);
const unsafeAll = new RegExp(unsafe.source, "g");
const unsafeBeyondLines = new RegExp(`[${range(0, 0x8)}${range(0xb, 0x1f)}${c1AndDel}${layout}]`, "g");
/** What can be left raw inside JSON text: JSON.stringify already writes C0 controls as `\u001b`. */
const unsafeInJson = new RegExp(`[${c1AndDel}${layout}]`);
const unsafeInJsonAll = new RegExp(unsafeInJson.source, "g");

const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(character: string): string {
  const code = character.charCodeAt(0);
  return named[character] ?? (code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
}

/**
 * `text` with every control character shown as an escape (`\x1b`, `\r`, `\u009b`, `\u202e`),
 * so printing it can only show characters. With `multiline`, newlines and tabs stay (for output
 * that is lines of free text, like console output); otherwise the result is one line. A
 * backslash is left as it is: `\x1b` in the output is either an escaped ESC or those four
 * characters as written.
 */
export function escapeControlChars(text: string, { multiline = false }: { multiline?: boolean } = {}): string {
  if (!unsafe.test(text)) return text;
  return text.replace(multiline ? unsafeBeyondLines : unsafeAll, escapeOne);
}

/**
 * JSON text (a line of `JSON.stringify`, of results NDJSON or CSV) with the characters
 * JSON.stringify leaves raw (DEL, C1 controls, bidirectional controls) written as `\u…`
 * escapes: the same JSON value, safe to print. Such characters can only be inside strings in
 * JSON text, where the escape means the same character.
 */
export function escapeJsonText(json: string): string {
  if (!unsafeInJson.test(json)) return json;
  return json.replace(unsafeInJsonAll, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
