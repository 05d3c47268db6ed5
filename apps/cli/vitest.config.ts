import { reporters } from "@crowdcompute/tooling/vitest-reports";
import { defineConfig } from "vitest/config";

// These tests start real servers and real Chromium: one file at a time on this 2-core machine.
export default defineConfig({
  test: {
    reporters: reporters("cli"),
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
