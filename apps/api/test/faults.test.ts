// Nothing is lost when something dies (issue 9; `npm run test:faults`, reduced size; the full
// size is bench/faults.bench.ts). Real browser volunteers (`crowdcompute volunteer`) and
// simulated HTTP volunteers compute one task while volunteers are killed, the API process is
// killed and restarted, Postgres restarts, or one of two API processes dies for good. Every
// chunk must end done exactly once with the right result, counters and credit exact.
import { testBackends } from "@crowdcompute/db/testing";
import { describe, expect, it } from "vitest";
import { type Fault, runFaultScenario, type ScenarioReport } from "./faults/scenario.ts";

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const size = { chunks: 3000, browsers: 2, simulated: 4 };

function expectNothingLost(report: ScenarioReport) {
  // Problems include any 5xx but 503 and every count that disagrees with the rows.
  expect(report.problems).toEqual([]);
  expect(report.doneAtFault).toBeLessThan(report.chunks);
  expect(report.browserChunks).toBeGreaterThan(0);
  expect(report.audit.resultChunks).toBe(report.chunks);
  expect(report.audit.overlaps).toBe(0);
}

describe.each(testBackends())("faults on %s", (backend) => {
  it.each<Fault>(["volunteers", "api-restart"])("%s: every chunk done once, right, counted once", { timeout: 240_000 }, async (fault) => {
    const report = await runFaultScenario({ fault, backend, adminUrl, ...size });
    expectNothingLost(report);
    if (fault === "volunteers") expect(report.volunteersKilled).toBe(3);
  });
});

describe("faults of the Postgres server and of one of two API processes", () => {
  it("postgres-restart: every chunk done once, right, counted once", { timeout: 240_000 }, async () => {
    expectNothingLost(await runFaultScenario({ fault: "postgres-restart", backend: "postgres", adminUrl, ...size }));
  });

  it("api-failover: every chunk done once, right, counted once", { timeout: 240_000 }, async () => {
    expectNothingLost(await runFaultScenario({ fault: "api-failover", backend: "postgres", adminUrl, ...size }));
  });
});
