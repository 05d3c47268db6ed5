import { defineConfig } from "vitest/config";
import { reporters } from "../../tooling/vitest-reports.ts";

export default defineConfig({
  test: { reporters: reporters("db"), testTimeout: 30_000, hookTimeout: 60_000 },
});
