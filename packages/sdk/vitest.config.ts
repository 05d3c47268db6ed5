import { reporters } from "@crowdcompute/tooling/vitest-reports";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { reporters: reporters("sdk"), testTimeout: 120_000 },
});
