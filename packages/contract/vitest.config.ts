import { reporters } from "@crowdcompute/tooling/vitest-reports";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { reporters: reporters("contract"), include: ["src/**/*.test.ts"] },
});
