// cpuMs and the CPU share inside a chunk (docs/architecture.md, "CPU time and the CPU share"),
// in real Chromium. Bounds are loose on purpose: timings go to bench/, these check behaviour.
import { expect, test } from "vitest";
import type { ChunkOutcome } from "../src/index.ts";
import { taskFor } from "./harness.ts";
import { sandboxPage } from "./sandbox-page.ts";

const running = sandboxPage({ threads: 1 });

async function runOne(code: string, input: unknown, cpuPercent = 100): Promise<ChunkOutcome> {
  const [outcome] = await running.page.evaluate(
    async ([task, chunk, share]) => {
      await window.sandbox.setCpuPercent(share);
      try {
        return await window.sandbox.runBatch(task, [chunk]);
      } finally {
        await window.sandbox.setCpuPercent(100);
      }
    },
    [taskFor(code, { timeoutMs: 20_000 }), { key: "chunk-0", index: 0, input }, cpuPercent] as const,
  );
  return outcome!;
}

const spin = `function spin(ms) { const end = performance.now() + ms; while (performance.now() < end); }`;

test("a chunk asleep on setTimeout for 2 s reports well under 2 s of CPU time", async () => {
  const code = `export default async function work(ms) { await new Promise((resolve) => setTimeout(resolve, ms)); return ms; }`;
  const outcome = await runOne(code, 2000);
  expect(outcome.ok).toBe(true);
  expect(outcome.cpuMs).toBeLessThan(1000);
});

test("a chunk asleep on setInterval and ctx.yield() is not credited for the wait either", async () => {
  const code = `export default async function work(ms, ctx) {
    await new Promise((resolve) => { let n = 0; const id = setInterval(() => { if (++n === 10) { clearInterval(id); resolve(); } }, ms / 10); });
    for (let i = 0; i < 100; i++) await ctx.yield();
    return ms;
  }`;
  const outcome = await runOne(code, 1500);
  expect(outcome.ok).toBe(true);
  expect(outcome.cpuMs).toBeLessThan(750);
});

test("a chunk that spins 500 ms reports about 500 ms", async () => {
  const code = `${spin} export default function work(ms) { spin(ms); return ms; }`;
  const outcome = await runOne(code, 500);
  expect(outcome.ok).toBe(true);
  expect(outcome.cpuMs).toBeGreaterThan(300);
  expect(outcome.cpuMs).toBeLessThan(1000);
});

test("a chunk that spins, sleeps, then spins again reports its spinning only", async () => {
  const code = `${spin} export default async function work(ms) { spin(ms); await new Promise((resolve) => setTimeout(resolve, 1500)); spin(ms); return ms; }`;
  const outcome = await runOne(code, 250);
  expect(outcome.ok).toBe(true);
  expect(outcome.cpuMs).toBeGreaterThan(300);
  expect(outcome.cpuMs).toBeLessThan(1200);
});

// 15 slices of 20 ms with `await ctx.yield()` between them; the chunk records when each began and ended.
const sliced = `${spin} export default async function work(slices, ctx) {
  const marks = [];
  for (let i = 0; i < slices; i++) {
    if (i > 0) await ctx.yield();
    const began = performance.now();
    spin(20);
    marks.push([began, performance.now()]);
  }
  return marks;
}`;

interface Timeline {
  busy: number;
  span: number;
  gaps: number[];
}

function timeline(outcome: ChunkOutcome): Timeline {
  if (!outcome.ok) throw new Error(`the chunk failed: ${outcome.error.kind}: ${outcome.error.message}`);
  const marks = JSON.parse(outcome.resultJson) as [number, number][];
  const busy = marks.reduce((sum, [began, ended]) => sum + (ended - began), 0);
  const gaps = marks.slice(1).map(([began], i) => began - marks[i]![1]);
  return { busy, span: marks.at(-1)![1] - marks[0]![0], gaps };
}

test("at 50 % a chunk that awaits ctx.yield() rests inside itself: about twice its compute time", async () => {
  const outcome = await runOne(sliced, 15, 50);
  const { busy, span, gaps } = timeline(outcome);
  const rested = gaps.reduce((sum, gap) => sum + gap, 0);
  console.log(`50 %: ${Math.round(busy)} ms computed over ${Math.round(span)} ms, ${Math.round(rested)} ms of rests, cpuMs ${Math.round(outcome.cpuMs)}`);
  expect(busy).toBeGreaterThanOrEqual(15 * 20);
  // Ideally rests ≈ busy: the chunk's own timeline shows them between its slices.
  expect(rested).toBeGreaterThan(0.5 * busy);
  expect(span).toBeGreaterThan(1.5 * busy);
  // Most gaps are rests, none is the whole debt at the end.
  expect(gaps.filter((gap) => gap >= 10).length).toBeGreaterThan(gaps.length / 2);
  // The rests are not CPU time.
  expect(outcome.cpuMs).toBeLessThan(0.8 * span);
});

test("at 100 % the same chunk does not rest", async () => {
  const outcome = await runOne(sliced, 15, 100);
  const { busy, span, gaps } = timeline(outcome);
  const rested = gaps.reduce((sum, gap) => sum + gap, 0);
  console.log(`100 %: ${Math.round(busy)} ms computed over ${Math.round(span)} ms, ${Math.round(rested)} ms between slices`);
  expect(rested).toBeLessThan(0.5 * busy);
});

test("at 50 % a chunk paced by awaited ctx.progress() and setTimeout(0) rests inside itself too", async () => {
  const code = `${spin} export default async function work(slices, ctx) {
    const marks = [];
    for (let i = 0; i < slices; i++) {
      if (i % 2 === 1) await ctx.progress(i / slices);
      else if (i > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      const began = performance.now();
      spin(20);
      marks.push([began, performance.now()]);
    }
    return marks;
  }`;
  const outcome = await runOne(code, 15, 50);
  const { busy, gaps } = timeline(outcome);
  const rested = gaps.reduce((sum, gap) => sum + gap, 0);
  expect(rested).toBeGreaterThan(0.5 * busy);
});

test("at 50 % ctx.progress called in a hot loop without await shares one rest: the chunk still returns promptly", async () => {
  const code = `export default function work(n, ctx) {
    const end = performance.now() + 300;
    let calls = 0;
    while (performance.now() < end) { ctx.progress(calls / n); calls++; }
    return calls;
  }`;
  const outcome = await runOne(code, 1e6, 50);
  expect(outcome.ok).toBe(true);
  if (outcome.ok) expect(JSON.parse(outcome.resultJson)).toBeGreaterThan(1000);
});
