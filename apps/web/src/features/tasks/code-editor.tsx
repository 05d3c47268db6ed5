import { javascript } from "@codemirror/lang-javascript";
import CodeMirror, { EditorView } from "@uiw/react-codemirror";
import { useMemo } from "react";

/**
 * The work-code editor (CodeMirror 6, JavaScript highlighting). Tab leaves the editor rather
 * than indenting, so keyboard users are never trapped in it.
 */
export function CodeEditor({ value, onChange, label, invalid, describedBy }: { value: string; onChange: (value: string) => void; label: string; invalid?: boolean; describedBy?: string | undefined }) {
  const extensions = useMemo(
    () => [
      javascript(),
      EditorView.contentAttributes.of({
        "aria-label": label,
        ...(invalid ? { "aria-invalid": "true" } : {}),
        ...(describedBy ? { "aria-describedby": describedBy } : {}),
      }),
      EditorView.lineWrapping,
    ],
    [label, invalid, describedBy],
  );
  return (
    <div className={`overflow-hidden rounded-lg border text-sm ${invalid ? "border-red-500 ring-1 ring-red-500" : "border-slate-300"}`}>
      <CodeMirror value={value} onChange={onChange} extensions={extensions} indentWithTab={false} minHeight="16rem" maxHeight="32rem" basicSetup={{ foldGutter: false }} />
    </div>
  );
}
