import type { Client, Task } from "@crowdcompute/sdk";

/**
 * Saves the task's results as a file. The SDK streams the lines (the request needs the
 * bearer token, so a plain link cannot do it); they are collected into a Blob for the save.
 */
export async function downloadResults(client: Client, task: Task, format: "ndjson" | "csv"): Promise<void> {
  const { sent, lines } = await client.resultLines(task.id, format);
  const parts: string[] = [];
  if (sent === "csv") parts.push("index,status,input,result,error\r\n");
  for await (const line of lines) {
    const trimmed = line.replace(/\r$/, "");
    // The server's CSV starts with its own header row.
    if (sent === "csv" && parts.length === 1 && trimmed.startsWith("index,")) continue;
    parts.push(sent === "csv" ? `${trimmed}\r\n` : `${trimmed}\n`);
  }
  const blob = new Blob(parts, { type: sent === "csv" ? "text/csv" : "application/x-ndjson" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `${task.name.replace(/[^\w.-]+/g, "-").slice(0, 60) || "task"}-${task.id.slice(0, 8)}.${sent}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
