import { reporters } from "@crowdcompute/tooling/vitest-reports";
import { defineConfig } from "vitest/config";

// Browser tests run one file at a time: this machine has 2 cores.
export default defineConfig({
  test: {
    reporters: reporters("web"),
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
