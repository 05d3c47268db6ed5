// Nothing a chunk registers runs in another chunk's time (docs/architecture.md, "The sandbox",
// item 4): a FinalizationRegistry callback for objects one chunk dropped must not run while the
// next chunk of the same task computes. Positive control: in a plain worker of the app page the
// same two calls, one after the other, do see the first one's callbacks run during the second.
import { expect, test } from "vitest";
import { chunksFor, results, runBatch, taskFor, volunteerSuite } from "./harness.ts";

const running = volunteerSuite({ threads: 1 });

/**
 * `first()` registers 20,000 objects it then drops; `second()` makes garbage and yields for a
 * while, and says how many callbacks ran meanwhile. It keeps its last 8 rounds of garbage, so
 * the old generation grows and full collections come (with young garbage alone, scavenges may
 * leave the registered objects, promoted by then, uncollected: the control once saw 0).
 */
const source = String.raw`
globalThis.ccFinal = {
  first() {
    globalThis.ran = 0;
    globalThis.registry = new FinalizationRegistry(() => { globalThis.ran++; });
    for (let i = 0; i < 20000; i++) globalThis.registry.register({ i, pad: new Array(8).fill(i) }, i);
    return "registered";
  },
  async second() {
    const before = globalThis.ran;
    const kept = [];
    for (let round = 0; round < 80 && globalThis.ran === before; round++) {
      const junk = [];
      for (let i = 0; i < 200000; i++) junk.push({ i, s: "x" + i });
      kept.push(junk);
      if (kept.length > 8) kept.shift();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return globalThis.ran - before;
  },
};
`;

test("a chunk's FinalizationRegistry callbacks do not run during the next chunk; outside the sandbox they do (positive control)", { timeout: 120_000 }, async () => {
  const control = await running.volunteer.evaluate<number>(`new Promise((resolve, reject) => {
    const worker = new Worker(URL.createObjectURL(new Blob([${JSON.stringify(source)} + "; onmessage = async (event) => postMessage(await ccFinal[event.data]());"], { type: "text/javascript" })));
    worker.onerror = (event) => reject(new Error(event.message));
    worker.onmessage = (event) => {
      if (event.data === "registered") worker.postMessage("second");
      else { worker.terminate(); resolve(event.data); }
    };
    worker.postMessage("first");
  })`);
  console.log("callbacks of the first call that ran during the second, outside the sandbox:", control);
  expect(control).toBeGreaterThan(0);

  const code = `${source}\nexport default (input) => globalThis.ccFinal[input]();`;
  const task = taskFor(code, { taskId: "finalization", timeoutMs: 30_000 });
  // One thread: both chunks run in the same worker, one after the other.
  const found = results(await runBatch(running.volunteer, task, chunksFor(["first", "second"])));
  console.log("in the sandbox:", found);
  expect(found).toEqual(["registered", 0]);
});
