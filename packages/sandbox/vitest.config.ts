import { reporters } from "@crowdcompute/tooling/vitest-reports";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: reporters("sandbox"),
    // dist/bootstrap.js is what the sandbox document serves; build it so `vitest run` alone works.
    globalSetup: ["./test/build-bootstrap.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
