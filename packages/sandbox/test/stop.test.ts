// Sandbox.stop (docs/architecture.md, "The volunteer page": Pause ends the frame), in real
// Chromium: chunks that spin checking nothing end as cancelled with their frame, and the next
// batch runs on a fresh one.
import { expect, test } from "vitest";
import { chunksFor, results, taskFor } from "./harness.ts";
import { sandboxPage } from "./sandbox-page.ts";

const running = sandboxPage({ threads: 2 });

test("stop ends the frame with its spinning workers: the batch settles cancelled, and the next batch runs on a fresh frame", async () => {
  const code = `export default function work(input, ctx) {
    ctx.progress(0);
    if (input === "spin") for (;;) {}
    return input * 2;
  }`;
  const { outcomes, framesAfterStop } = await running.page.evaluate(
    async ([task, chunks]) => {
      const started = new Set<string>();
      let wake = (): void => {};
      const batch = window.sandbox.runBatch(task, chunks, {
        onProgress: ({ key }) => {
          started.add(key);
          wake();
        },
      });
      while (started.size < 2) await new Promise<void>((resolve) => (wake = resolve));
      window.sandbox.stop();
      const outcomes = await batch;
      return { outcomes, framesAfterStop: document.querySelectorAll("iframe").length };
    },
    [taskFor(code, { timeoutMs: 60_000 }), chunksFor(["spin", "spin", 3])] as const,
  );
  const cancelled = { kind: "cancelled", message: "the chunk was cancelled" };
  expect(results(outcomes)).toEqual([cancelled, cancelled, cancelled]);
  // The frame went with the batch's end, not after a grace.
  expect(framesAfterStop).toBe(0);
  const again = await running.page.evaluate(([task, chunks]) => window.sandbox.runBatch(task, chunks), [taskFor(code), chunksFor([1, 2])] as const);
  expect(results(again)).toEqual([2, 4]);
  expect(await running.page.evaluate(() => document.querySelectorAll("iframe").length)).toBe(1);
});
